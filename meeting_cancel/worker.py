"""The queue worker: turns one queue message into at most one successful Graph cancel.

Cancel is not idempotent at Graph (every success mails every attendee) and the queue delivers at
least once, so each request's status record moves through the lifecycle (``lifecycle``: the
moves and the map of allowed ones; ``steps``: which move comes next), its writes guarded by
ETags. This module only carries the steps out: it reads and writes the record, calls Graph,
takes the mailbox slot and talks to the queue.

* A request is claimed (recorded with an unknown outcome and a lease) before Graph is called.
* One Graph cancel per meeting, not only per request: before the cancel the request takes the
  meeting's row (``meeting_links``); a request that finds another holding it follows that one
  (``steps.after_owner``) and ends with its outcome, or takes the meeting over when the owner
  failed for a reason that may pass.
* The cancel runs inside one of the mailbox's slots shared by every instance (``concurrency``).
* After an unknown outcome (timeout, reset, 5xx) the event is read before any new call: gone
  means our earlier call cancelled it.
* Throttling puts a delayed copy on the queue and completes the message, so a good request never
  reaches poison by being throttled; other transient errors are raised for the host to retry.
* A message is completed only once its outcome is recorded (or it is a duplicate); a message that
  cannot be read or is invalid goes to poison at once, its status saying why when it claims an id
  nobody has (it never changes a record it does not own).
* On the last delivery any error the code does not handle records ``failed`` before the message
  leaves for poison (``steps.after_unexpected``), so an accepted id always ends final.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import lifecycle, meeting_links, occurrences, operations, sending, steps, telemetry, verification
from .errors import ConcurrentUpdate, GraphError, GraphPermanentError, GraphThrottled, IdentityUnavailable
from .graph_journal import GraphCall, journal
from .lifecycle import Failure
from .models import TRACKING_ID, QueuedCancelRequest
from .occurrences import EventFacts
from .parsing import UnreadableJson, describe_errors, load_json, validation_detail
from .records import Status, StatusRecord
from .work_queue import RecordNote, decode, take_note

if TYPE_CHECKING:
    from .config import Settings
    from .recipient_budget import Reservation
    from .service import Service

log = logging.getLogger(__name__)
FINAL_WRITE_TRIES = 3
MAX_STEPS = 5


class Outcome(StrEnum):
    CANCELLED = "cancelled"
    FAILED = "failed"
    REQUEUED = "requeued"
    DUPLICATE = "duplicate"
    POISONED = "poisoned"


class RetryLater(Exception):
    """Raised to the host: the message stays on the queue and comes back after visibilityTimeout."""


@dataclass(frozen=True)
class Delivery:
    body: bytes
    message_id: str
    dequeue_count: int
    inserted_at: datetime | None = None  # when the message was put on the queue (redrive rule, ``operations``)


def process(service: Service, delivery: Delivery) -> Outcome:
    parsed = _parse(service, delivery)
    if isinstance(parsed, Outcome):
        return parsed
    request, request_id, note = parsed
    attempt: _Attempt | None = None
    try:
        attempt = _Attempt(service, delivery, request, request_id, note)
        with telemetry.continue_trace("process cancellation", request.traceparent, request_id=request_id):
            return attempt.run()
    except Exception as error:
        _on_unhandled(service, delivery, request, request_id, error, claimed_here=bool(attempt and attempt.claimed))
        raise


def _parse(service: Service, delivery: Delivery) -> tuple[QueuedCancelRequest, str, RecordNote] | Outcome:
    text = decode(delivery.body)
    if text is None:
        return _poison(
            service,
            delivery,
            None,
            Failure("unreadableMessage", "the message is neither JSON text nor base64-encoded JSON"),
        )
    try:
        document: Any = load_json(text)
    except UnreadableJson as error:
        return _poison(service, delivery, None, Failure("unreadableMessage", f"the message is not valid JSON: {error}"))
    note = take_note(document) if isinstance(document, dict) else RecordNote()
    claimed_id = document.get("id") if isinstance(document, dict) else None
    request_id = claimed_id if isinstance(claimed_id, str) and TRACKING_ID.fullmatch(claimed_id) else None
    try:
        request = QueuedCancelRequest.model_validate(document)
    except ValidationError as error:
        detail = validation_detail(describe_errors(error, QueuedCancelRequest))
        return _poison(service, delivery, request_id, Failure("invalidMessage", detail))
    return request, request.id or delivery.message_id, note


def _poison(service: Service, delivery: Delivery, request_id: str | None, failure: Failure) -> Outcome:
    """Moves the message aside now: retrying cannot make an unreadable message readable."""
    log.error(
        "message moved to poison: %s",
        failure.message,
        extra={"message_id": delivery.message_id, "request_id": request_id, "code": failure.code},
    )
    if request_id is not None:
        # Recorded only under an id nobody holds: an existing record is another request's (its own
        # messages are valid), and poisoning a message never finishes someone else's request.
        # Recorded before the move, so a failed move is retried without a second poison copy.
        service.store.insert(lifecycle.reject(request_id, failure, source="queue", now=service.clock()))
    service.queue.send_to_poison(delivery.body)
    telemetry.record_poisoned(failure.code)
    return Outcome.POISONED


def _on_unhandled(
    service: Service,
    delivery: Delivery,
    request: QueuedCancelRequest,
    request_id: str,
    error: Exception,
    *,
    claimed_here: bool,
) -> None:
    """Performs ``steps.after_unexpected`` for an error leaving ``process``: on the last delivery
    the request is recorded failed before the host moves the message to poison."""
    if isinstance(error, RetryLater) and not service.retry_policy.last_delivery(delivery.dequeue_count):
        return
    context = {"request_id": request_id, "message_id": delivery.message_id, "dequeue_count": delivery.dequeue_count}
    try:
        record = service.store.get(request_id)
        decision = steps.after_unexpected(
            record,
            request,
            error,
            now=service.clock(),
            claimed_here=claimed_here,
            dequeue_count=delivery.dequeue_count,
            policy=service.retry_policy,
        )
        if record is None or decision is None:
            if not isinstance(error, RetryLater):
                log.error("delivery failed: %s", type(error).__name__, extra=context, exc_info=error)
            return
        failure, resolution = decision.failure, decision.resolution
        _write_final(
            service, record, lambda r: lifecycle.fail(r, now=service.clock(), failure=failure, resolution=resolution)
        )
        log.error("request failed on its last delivery: %s", failure.message, extra=context, exc_info=error)
    except Exception as recording:  # the original error is what the host sees
        log.error("could not record the failure of the last delivery: %s", recording, extra=context)


class _Attempt:
    """One delivery of one request: asks ``steps`` what comes next and does it, until done.

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

    def run(self) -> Outcome:
        with journal() as self.calls:
            try:
                for _ in range(MAX_STEPS):  # at most resolve, verify, cancel: each move ends its own step
                    if not (self.unstored or self.unconfirmed) and operations.is_redrive(self.record, self.delivery):
                        self.record = operations.redrive(self.service, self.record)  # a poison message moved back
                    step = steps.next_step(self.record, self.request, self.service.clock(), self.settings)
                    if (self.unstored or self.unconfirmed) and not isinstance(step, steps.Cancel):
                        self._settle_record()
                        continue
                    outcome = self._perform(step)
                    if outcome is not None:
                        return outcome
            except (GraphError, IdentityUnavailable) as error:
                return self._after_error(error)
            except ConcurrentUpdate:
                latest = self.service.store.get(self.record.id)
                if latest is not None and latest.status.final:  # e.g. aborted meanwhile: nothing left to do
                    log.info(
                        "request %s became %s meanwhile; completing the message",
                        latest.id,
                        latest.status,
                        extra=self.context,
                    )
                    return Outcome.DUPLICATE
                raise
        raise RetryLater(f"request {self.record.id} took more than {MAX_STEPS} steps in one delivery")

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

    def _perform(self, step: steps.Step) -> Outcome | None:
        """Carries out one step; None when the record moved and the next step is to be decided."""
        match step:
            case steps.Conflict(reason):
                return _poison(self.service, self.delivery, None, Failure("idConflict", reason))
            case steps.Duplicate(reason):
                log.info(reason, extra=self.context)
                return Outcome.DUPLICATE
            case steps.ComeBackLater(delay, reason):
                self._send_copy(delay)
                log.info("message put back for %.1f s: %s", delay, reason, extra=self.context)
                return Outcome.REQUEUED
            case steps.Refuse(failure):
                return self._finish(lambda r: lifecycle.fail(r, now=self.service.clock(), failure=failure))
            case steps.Follow(owner_id):
                owner = self.service.store.get(owner_id)
                decision = steps.after_owner(owner_id, owner, self.service.clock())
                if isinstance(decision, steps.TakeOver):
                    held = self._hold_meeting(self.record.event_id)
                    return None if isinstance(held, meeting_links.Held) else held
                return self._defer_to(decision)
            case steps.Resolve():
                return self._resolve()
            case steps.Verify() as verify:
                log.warning(
                    "an earlier attempt has an unknown outcome; looking for the event first", extra=self.context
                )
                if verification.gone(self.service, self.record.organizer, verify, request_id=self.record.id):
                    return self._settle(steps.GONE_AFTER_UNKNOWN)
                self._save(lifecycle.confirm_present(self.record, now=self.service.clock()))
                return None
            case steps.Cancel(event_id, lease_seconds):
                return self._cancel(event_id, lease_seconds)
        raise AssertionError(f"unknown step {step!r}")

    def _resolve(self) -> Outcome | None:
        """Finds the Graph id of a meeting named by iCalUId, or of one occurrence of a series."""
        graph, request = self.service.graph, self.request
        if request.iCalUId is not None:
            found = graph.find_by_ical_uid(request.organizer, request.iCalUId, request_id=self.record.id)
        else:
            assert request.occurrenceDate is not None
            start, end = occurrences.search_window(request.occurrenceDate, request.zone)
            listed = graph.instances(request.organizer, str(request.eventId), start, end, request_id=self.record.id)
            found = occurrences.pick(listed, request.occurrenceDate, request.zone)
        match steps.resolved(request, found):
            case Failure() as failure:
                return self._finish(lambda r: lifecycle.fail(r, now=self.service.clock(), failure=failure))
            case str(event_id):
                self._save(lifecycle.resolve(self.record, event_id, now=self.service.clock()))
                return None
        raise AssertionError("unreachable")

    def _hold_meeting(self, event_id: str) -> Outcome | meeting_links.Held | None:
        """Holds the meeting's row (Held: go on to Graph), follows its owner (an Outcome), or
        records a take-over and decides again (None)."""
        match meeting_links.hold(self.service, self.record, event_id):
            case meeting_links.Held(took_over, doubt) as held:
                if took_over:
                    log.warning("took the meeting over from its previous owner", extra=self.context)
                if not (self.record.follows or doubt):
                    return held
                if self._settled_now() and self.record.status.final:
                    return None  # finished meanwhile: decide again (a duplicate)
                self._save(lifecycle.take_over(self.record, now=self.service.clock(), outcome_unknown=doubt))
                return None
            case None:
                self._send_copy(steps.BUSY_RETRY_SECONDS)
                log.info("message put back: the meeting's row kept changing", extra=self.context)
                return Outcome.REQUEUED
            case decision:
                if self._settled_now() and self.record.status.final:
                    return None  # finished meanwhile: decide again (a duplicate)
                return self._defer_to(decision)

    def _defer_to(self, decision: steps.Share | steps.Wait) -> Outcome:
        """Ends with the owner's outcome, or links to the owner and looks again later."""
        match decision:
            case steps.Share(owner):
                return self._finish(lambda r: lifecycle.follow(r, owner, now=self.service.clock()))
            case steps.Wait(owner_id, delay):
                if self.record.follows != owner_id:
                    self._save(lifecycle.link(self.record, owner_id, now=self.service.clock()))
                self._send_copy(delay)
                log.info(
                    "request %s holds this meeting; following it, next look in %.1f s",
                    owner_id,
                    delay,
                    extra=self.context,
                )
                return Outcome.REQUEUED
        raise AssertionError(f"unknown decision {decision!r}")

    def _settled_now(self) -> bool:
        """Stores or reads the record when it came with the message or is not stored yet, before
        anything is written to it (a take-over keeps the doubt it found); whether it had to."""
        if not (self.unstored or self.unconfirmed):
            return False
        self._settle_record()
        return True

    def _cancel(self, event_id: str, lease_seconds: float) -> Outcome | None:
        """Holds the meeting, claims, then under one mailbox slot: reads the event (unless the message
        or an earlier delivery gave the attendee count), counts the notice against the mailbox's
        recipient budget, and cancels."""
        graph, limiter, organizer = self.service.graph, self.service.limiter, self.record.organizer
        graph.prepare_token()  # an identity outage is never mistaken for a call with an unknown outcome
        holding_from = self.service.clock()
        held = self._hold_meeting(event_id)
        if not isinstance(held, meeting_links.Held):
            return held
        unknown_before = self.record.outcome_unknown
        claimed = lifecycle.claim(self.record, now=self.service.clock(), lease_seconds=lease_seconds)
        # Recorded before the mailbox slot, so the slot covers the Graph calls alone.
        if self.unstored:  # accepted and claimed in one insert
            self.unstored = False
            inserted = self.service.store.insert(claimed)
            if inserted is None:  # another delivery created it first: decide on what is stored
                self._settle_record()
                return None
            self.record = inserted
        else:
            try:
                self._save(claimed)
            except ConcurrentUpdate:
                if self.unconfirmed:  # the message's copy of the record is out of date
                    self._settle_record()
                    return None
                self._send_copy(steps.BUSY_RETRY_SECONDS)
                log.info("message put back: the request changed while being claimed", extra=self.context)
                return Outcome.REQUEUED
            self.unconfirmed = False
        self.claimed = True
        self.claimed_unknown = unknown_before
        if (self.service.clock() - holding_from).total_seconds() > steps.HOLD_TO_CLAIM_MAX_SECONDS:
            # Another request may have taken the meeting over meanwhile (steps.OWNER_RECORD_GRACE_SECONDS):
            # nothing was sent, so the claim is undone and the next delivery holds the row again.
            return self._schedule(
                steps.BUSY_RETRY_SECONDS,
                "the claim was stored too long after the meeting was held",
                lambda r, due: lifecycle.release(r, now=self.service.clock(), due=due),
            )
        with limiter.slot(organizer, max_wait=steps.SLOT_MAX_WAIT_SECONDS) as wait:
            if wait:  # nothing was sent: the claim is undone
                return self._schedule(
                    wait,
                    "this mailbox is being throttled",
                    lambda r, due: lifecycle.release(r, now=self.service.clock(), due=due),
                )
            recipients = self.request.recipients if self.request.recipients is not None else self.record.recipients
            if recipients is None:  # not in the message, not read by an earlier delivery: read it now
                self.facts = graph.event_facts(organizer, event_id, request_id=self.record.id)
                refusal = sending.refusal(self.facts, event_id)
                if refusal is not None:
                    return self._unclaim_and_fail(refusal)
                recipients = self.facts.attendees
            budget = sending.reserve(self.service.budget, organizer, recipients, now=self.service.clock())
            if isinstance(budget, Failure):
                return self._unclaim_and_fail(budget)
            if isinstance(budget, sending.Wait):
                return self._schedule(
                    budget.delay,
                    budget.failure.message,
                    lambda r, due: lifecycle.release(r, now=self.service.clock(), due=due, reason=budget.failure),
                    jitter=False,
                )
            self.reservation = budget
            self.cancel_sent = True
            try:
                graph.cancel(organizer, event_id, self.request.comment, request_id=self.record.id)
            except GraphPermanentError as error:
                raise sending.explained(
                    graph, organizer, event_id, error, self.facts, request_id=self.record.id
                ) from None
            limiter.record_success(organizer)
        return self._settle(steps.CANCELLED_BY_GRAPH)

    def _unclaim_and_fail(self, failure: Failure) -> Outcome:
        """Nothing was sent: the claim is undone and the request fails (one write)."""
        now = self.service.clock

        def move(record: StatusRecord) -> StatusRecord:
            return lifecycle.fail(lifecycle.unclaimed(record, outcome_unknown=False), now=now(), failure=failure)

        return self._finish(move)

    def _after_error(self, error: GraphError | IdentityUnavailable) -> Outcome:
        if self.unstored or self.unconfirmed:  # nothing was sent: the outcome is recorded on what is stored
            self._settle_record()
        if self.reservation is not None and sending.certainly_not_sent(error):
            self.service.budget.refund(self.reservation)
            self.reservation = None
        if isinstance(error, IdentityUnavailable):
            log.error("managed identity endpoint failed; will retry: %s", error, extra=self.context)
        if self.claimed_unknown is not None and not self.cancel_sent:
            # the claim said "maybe sent", but this delivery failed before its cancel: only earlier
            # deliveries can have sent one
            self.record = lifecycle.unclaimed(self.record, outcome_unknown=self.claimed_unknown)
        decision = steps.after_error(
            self.record,
            error,
            now=self.service.clock(),
            cancel_sent=self.cancel_sent,
            dequeue_count=self.delivery.dequeue_count,
            policy=self.service.retry_policy,
        )
        if isinstance(error, GraphThrottled):
            self.service.limiter.record_throttled(
                self.record.organizer, steps.throttle_delay(self.record, error, self.service.retry_policy)
            )
        now = self.service.clock
        match decision:
            case steps.BackOff(delay, failure, unknown, reason):
                return self._schedule(
                    delay,
                    reason,
                    lambda r, due: lifecycle.back_off(r, now=now(), due=due, failure=failure, outcome_unknown=unknown),
                )
            case steps.Settle(resolution):
                return self._settle(resolution)
            case steps.GiveUp(failure, resolution, poison):
                outcome = self._finish(lambda r: lifecycle.fail(r, now=now(), failure=failure, resolution=resolution))
                if poison:
                    telemetry.record_poisoned(failure.code)
                    raise RetryLater(failure.message)
                return outcome
            case steps.HostRetry(failure, unknown, retry_in):
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
        self.record = _write_final(self.service, self.record, lambda r: self._noted(move(r)))
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
        return lifecycle.noted(record, self.calls[self.calls_written :], self.facts)


def _write_final(service: Service, record: StatusRecord, move: Callable[[StatusRecord], StatusRecord]) -> StatusRecord:
    """Records a final status; a concurrent writer that already finished the request wins."""
    for _ in range(FINAL_WRITE_TRIES):
        try:
            return service.store.replace(move(record))
        except ConcurrentUpdate:
            latest = service.store.get(record.id)
            if latest is None or latest.status.final:
                return latest or record
            record = latest
    raise RetryLater(f"status record {record.id} kept changing")
