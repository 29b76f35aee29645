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
  leaves for poison (``error_steps.after_unexpected``), so an accepted id always ends final.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import (
    deliveries,
    lifecycle,
    meeting_links,
    occurrences,
    operations,
    sending,
    steps,
    telemetry,
    verification,
)
from .attempt_record import AttemptRecord
from .deliveries import Delivery, Outcome, RetryLater
from .errors import ConcurrentUpdate, GraphError, GraphPermanentError, IdentityUnavailable
from .failures import Failure
from .graph_journal import journal

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
MAX_STEPS = 5


def process(service: Service, delivery: Delivery) -> Outcome:
    parsed = deliveries.read(service, delivery)
    if isinstance(parsed, Outcome):
        return parsed
    request, request_id, note = parsed
    attempt: _Attempt | None = None
    try:
        attempt = _Attempt(service, delivery, request, request_id, note)
        with telemetry.continue_trace("process cancellation", request.traceparent, request_id=request_id):
            outcome = attempt.run()
    except Exception as error:
        deliveries.on_unhandled(
            service, delivery, request, request_id, error, claimed_here=bool(attempt and attempt.claimed)
        )
        raise
    log.info("message %s: %s", delivery.message_id, outcome, extra={"request_id": request_id})
    return outcome


class _Attempt(AttemptRecord):
    """One delivery of one request: asks ``steps`` what comes next and does it, until done
    (the record it works on, and how that is written: ``attempt_record``)."""

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

    def _perform(self, step: steps.Step) -> Outcome | None:
        """Carries out one step; None when the record moved and the next step is to be decided."""
        match step:
            case steps.Conflict(reason):
                return deliveries.poison(self.service, self.delivery, None, Failure("idConflict", reason))
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
