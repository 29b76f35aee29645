"""The status record one delivery works on, where it came from (read, carried in the message,
or not stored yet) and how it is written: every write carries the Graph calls and facts learnt
since the last one, a final write yields to a concurrent writer that already finished the
request, and a delayed copy goes on the queue before the record says when it comes back. What a
failed Graph or identity call does to the record (``error_steps`` decides) is carried out here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import error_steps, graph_journal, lifecycle, sending, steps, telemetry
from .deliveries import Delivery, Outcome, RetryLater, write_final
from .errors import GraphError, GraphThrottled, IdentityUnavailable
from .failures import Failure
from .graph_journal import GraphCall
from .models import QueuedCancelRequest
from .occurrences import EventFacts
from .records import Status, StatusRecord
from .work_queue import RecordNote

if TYPE_CHECKING:
    from .config import Settings
    from .recipient_budget import Reservation
    from .service import Service

log = logging.getLogger(__name__)


class AttemptRecord:
    """The record one delivery works on, and how it is written.

    The record starts in one of three states, so that the common case costs one storage write
    before Graph is called:

    * **read**: as stored now (read, or written by this delivery).
    * **from the message** (``unconfirmed``): intake's record with its ETag. The claim is one
      conditional write; if it fails the record moved on, so it is read and the step decided again.
      Any step other than a claim reads the record first.
    * **fresh** (``unstored``): a workflow's message with no record yet. The claim creates the
      record already claimed (accept and claim in one insert); if one exists it is read instead.
      Any step other than a claim first stores the fresh record (or reads the one that exists).
    """

    def __init__(
        self, service: Service, delivery: Delivery, request: QueuedCancelRequest, request_id: str, note: RecordNote
    ) -> None:
        self.service = service
        self.delivery = delivery
        self.request = request
        self.cancel_sent = False
        self.unstored = self.unconfirmed = False
        if note.record is not None and note.record.id == request_id:
            self.record = note.record
            self.unconfirmed = True
        elif note.exists and (stored := service.store.get(request_id)) is not None:
            self.record = stored
        else:
            self.record = self._fresh(request_id)
        self.claimed = False
        self.calls: list[GraphCall] = []
        self.calls_written = 0
        self.facts: EventFacts | None = None
        self.reservation: Reservation | None = None
        self.claimed_unknown: bool | None = None  # the record's doubt before this delivery's claim
        self.context = {
            "request_id": request_id,
            "message_id": delivery.message_id,
            "dequeue_count": delivery.dequeue_count,
        }

    def _fresh(self, request_id: str) -> StatusRecord:
        self.unstored = True
        return lifecycle.accept(
            request_id,
            self.request,
            source="queue",
            now=self.service.clock(),
            submitted_by="queue",
            body_hash=steps.fingerprint(self.request),
        )

    def _settle_record(self) -> None:
        """Makes ``self.record`` the stored one: stores a fresh record (or reads the one that
        exists), or reads a record that came with the message."""
        if self.unstored:
            self.unstored = False
            inserted = self.service.store.insert(self.record)
            if inserted is not None:
                self.record = inserted
                return
        self.unconfirmed = False
        stored = self.service.store.get(self.record.id)
        if stored is None:
            if self.record.source == "queue":
                raise RetryLater(f"status record {self.record.id} could not be created")
            self.record = self._fresh(self.record.id)  # the message's record is gone: created as a queue request's
            return
        self.record = stored

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def _settled_now(self) -> bool:
        """Stores or reads the record when it came with the message or is not stored yet, before
        anything is written to it (a take-over keeps the doubt it found); whether it had to."""
        if not (self.unstored or self.unconfirmed):
            return False
        self._settle_record()
        return True

    def _schedule(
        self,
        delay: float,
        reason: str,
        move: Callable[[StatusRecord, datetime], StatusRecord],
        *,
        jitter: bool = True,
    ) -> Outcome:
        """Puts a delayed copy on the queue first, then records when it will come back."""
        if jitter:
            delay = self.service.retry_policy.jittered(delay, self.service.random)
        self._send_copy(delay)
        self._save(move(self.record, self.service.clock() + timedelta(seconds=delay)))
        log.info("request put back for %.1f s: %s", delay, reason, extra=self.context)
        return Outcome.REQUEUED

    def _send_copy(self, delay: float) -> None:
        copy = self.request.model_copy(update={"id": self.record.id})
        self.service.queue.send(copy, delay_seconds=delay, note=RecordNote(exists=True))

    def _settle(self, resolution: str) -> Outcome:
        return self._finish(lambda r: lifecycle.complete(r, now=self.service.clock(), resolution=resolution))

    def _finish(self, move: Callable[[StatusRecord], StatusRecord]) -> Outcome:
        self.record = write_final(self.service, self.record, lambda r: self._noted(move(r)))
        self.calls_written = len(self.calls)
        record = self.record
        level = logging.INFO if record.status == Status.CANCELLED else logging.WARNING
        log.log(
            level,
            "request %s: %s",
            record.status,
            record.error_code if record.status == Status.FAILED else record.resolution or "",
            extra={**self.context, "graph_request_id": record.graph_request_id},
        )
        return Outcome.CANCELLED if record.status == Status.CANCELLED else Outcome.FAILED

    def _save(self, record: StatusRecord) -> None:
        self.record = self.service.store.replace(self._noted(record))
        self.calls_written = len(self.calls)

    def _noted(self, record: StatusRecord) -> StatusRecord:
        """The calls and facts not yet written travel with this write."""
        return graph_journal.noted(record, self.calls[self.calls_written :], self.facts)

    def _unclaim_and_fail(self, failure: Failure) -> Outcome:
        """Nothing was sent: the claim is undone and the request fails (one write)."""
        now = self.service.clock

        def move(record: StatusRecord) -> StatusRecord:
            return lifecycle.fail(lifecycle.unclaimed(record, outcome_unknown=False), now=now(), failure=failure)

        return self._finish(move)

    def _after_error(self, error: GraphError | IdentityUnavailable) -> Outcome:
        self._settled_now()  # nothing was sent from a record not yet stored: the outcome goes on what is
        if self.reservation is not None and sending.certainly_not_sent(error):
            self.service.budget.refund(self.reservation)
            self.reservation = None
        if isinstance(error, IdentityUnavailable):
            log.error("managed identity endpoint failed; will retry: %s", error, extra=self.context)
        if self.claimed_unknown is not None and not self.cancel_sent:
            # the claim said "maybe sent", but this delivery failed before its cancel: only earlier
            # deliveries can have sent one
            self.record = lifecycle.unclaimed(self.record, outcome_unknown=self.claimed_unknown)
        decision = error_steps.after_error(
            self.record,
            error,
            now=self.service.clock(),
            cancel_sent=self.cancel_sent,
            dequeue_count=self.delivery.dequeue_count,
            policy=self.service.retry_policy,
        )
        if isinstance(error, GraphThrottled):
            self.service.limiter.record_throttled(
                self.record.organizer, error_steps.throttle_delay(self.record, error, self.service.retry_policy)
            )
        now = self.service.clock
        match decision:
            case error_steps.BackOff(delay, failure, unknown, reason):
                return self._schedule(
                    delay,
                    reason,
                    lambda r, due: lifecycle.back_off(r, now=now(), due=due, failure=failure, outcome_unknown=unknown),
                )
            case error_steps.Settle(resolution):
                return self._settle(resolution)
            case error_steps.GiveUp(failure, resolution, poison):
                outcome = self._finish(lambda r: lifecycle.fail(r, now=now(), failure=failure, resolution=resolution))
                if poison:
                    telemetry.record_poisoned(failure.code)
                    raise RetryLater(failure.message)
                return outcome
            case error_steps.HostRetry(failure, unknown, retry_in):
                self._save(
                    lifecycle.retry_later(
                        self.record, now=now(), retry_in=retry_in, failure=failure, outcome_unknown=unknown
                    )
                )
                log.warning(
                    "transient failure (%s); the host will deliver the message again", failure.code, extra=self.context
                )
                raise RetryLater(failure.message)
        raise AssertionError(f"unknown step {decision!r}")
