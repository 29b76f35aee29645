"""The queue worker: turns one queue message into at most one successful Graph cancel.

Cancel is not idempotent at Graph (every success mails every attendee) and the queue delivers at
least once, so the status record is a small state machine guarded by ETags:

    queued ──▶ processing ──▶ cancelled | failed
                  │  ▲
                  ▼  │
               retrying        (throttled: a delayed copy of the message; transient: host retry)

* The attempt is recorded (``outcome_unknown``, ``in_flight_until``) before Graph is called.
* After an unknown outcome (timeout, reset, 5xx) the event is read before any new call: gone
  means our earlier call cancelled it.
* Throttling puts a delayed copy on the queue and completes the message, so a good request never
  reaches poison by being throttled; other transient errors are raised for the host to retry.
* A message that cannot be read or is invalid goes to poison at once, its status saying why.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .errors import GraphError, GraphPermanentError, GraphThrottled, GraphTransientError, IdentityUnavailable
from .models import TRACKING_ID, QueuedCancelRequest, decode_message, describe_errors, validation_detail
from .records import ConcurrentUpdate, Status, StatusRecord, utcnow

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
LEASE_MARGIN_SECONDS = 5.0
SLOT_MAX_WAIT_SECONDS = 5.0
BUSY_RETRY_SECONDS = 5.0
EARLY_TOLERANCE_SECONDS = 2.0
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0


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


def process(service: Service, delivery: Delivery) -> Outcome:
    parsed = _parse(service, delivery)
    if isinstance(parsed, Outcome):
        return parsed
    request, request_id = parsed
    record = _load_or_create(service, request, request_id)
    return _Attempt(service, delivery, request, record).run()


def _parse(service: Service, delivery: Delivery) -> tuple[QueuedCancelRequest, str] | Outcome:
    text = decode_message(delivery.body)
    if text is None:
        return _poison(
            service, delivery, None, "unreadableMessage", "the message is neither JSON text nor base64-encoded JSON"
        )
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError as error:
        return _poison(service, delivery, None, "unreadableMessage", f"the message is not valid JSON: {error.msg}")
    claimed_id = document.get("id") if isinstance(document, dict) else None
    request_id = claimed_id if isinstance(claimed_id, str) and TRACKING_ID.fullmatch(claimed_id) else None
    try:
        request = QueuedCancelRequest.model_validate(document)
    except ValidationError as error:
        detail = validation_detail(describe_errors(error, QueuedCancelRequest))
        return _poison(service, delivery, request_id, "invalidMessage", detail)
    return request, request.id or delivery.message_id


def _load_or_create(service: Service, request: QueuedCancelRequest, request_id: str) -> StatusRecord:
    record = service.store.get(request_id)
    if record is None:
        fresh = StatusRecord.queued(request_id, request, source="queue", submitted_by="queue")
        record = service.store.insert(fresh) or service.store.get(request_id)
        if record is None:
            raise RetryLater(f"status record {request_id} could not be created")
    return record


def _poison(service: Service, delivery: Delivery, request_id: str | None, code: str, reason: str) -> Outcome:
    """Moves the message aside now: retrying cannot make an unreadable message readable."""
    log.error(
        "message moved to poison: %s",
        reason,
        extra={"message_id": delivery.message_id, "request_id": request_id, "code": code},
    )
    service.queue.send_to_poison(delivery.body.decode("utf-8", errors="replace"))
    if request_id is not None:
        existing = service.store.get(request_id)
        if existing is None:
            failed = StatusRecord(
                id=request_id,
                status=Status.FAILED,
                organizer="",
                event_id="",
                source="queue",
                error_code=code,
                error_message=reason,
            )
            service.store.insert(failed)
        elif not existing.status.final and existing.source == "queue":
            _write_final(service, existing, Status.FAILED, error_code=code, error_message=reason)
    return Outcome.POISONED


class _Attempt:
    def __init__(
        self, service: Service, delivery: Delivery, request: QueuedCancelRequest, record: StatusRecord
    ) -> None:
        self.service = service
        self.delivery = delivery
        self.request = request
        self.record = record
        self.cancel_sent = False
        self.context = {
            "request_id": record.id,
            "message_id": delivery.message_id,
            "dequeue_count": delivery.dequeue_count,
        }

    def run(self) -> Outcome:
        record = self.record
        if (record.organizer, record.target or record.event_id) != (self.request.organizer, self.request.target):
            return _poison(
                self.service,
                self.delivery,
                None,
                "idConflict",
                f"the tracking id {record.id!r} already belongs to another meeting",
            )
        if record.status.final:
            log.info("duplicate delivery of a finished request; completing it", extra=self.context)
            return Outcome.DUPLICATE
        now = utcnow()
        if record.in_flight_until and record.in_flight_until > now:
            return self._requeue(
                (record.in_flight_until - now).total_seconds() + BUSY_RETRY_SECONDS,
                reason="another delivery is calling Graph for this request",
            )
        if (
            record.status == Status.RETRYING
            and record.delayed_copy_due
            and record.delayed_copy_due - now > timedelta(seconds=EARLY_TOLERANCE_SECONDS)
        ):
            log.info("early copy of a request waiting for its retry; completing it", extra=self.context)
            return Outcome.DUPLICATE
        if not self.service.settings.organizers.allows(record.organizer):
            return self._finish(
                Status.FAILED,
                error_code="organizerNotAllowed",
                error_message=self.service.settings.organizers.refusal(record.organizer),
            )
        try:
            if not record.event_id:
                found = self._resolve()
                if isinstance(found, Outcome):
                    return found
            return self._cancel_once()
        except GraphThrottled as throttled:
            return self._throttled(throttled)
        except GraphTransientError as error:
            return self._transient(error.code, str(error), error=error)
        except IdentityUnavailable as error:
            log.error("managed identity endpoint failed; will retry: %s", error, extra=self.context)
            return self._transient("identityUnavailable", str(error))
        except GraphPermanentError as error:
            return self._finish(Status.FAILED, error=error)

    def _resolve(self) -> Outcome | None:
        """Finds the Graph id of a meeting named by iCalUId, or of one occurrence of a series."""
        graph, request = self.service.graph, self.request
        if request.iCalUId is not None:
            found = graph.find_by_ical_uid(request.organizer, request.iCalUId, request_id=self.record.id)
            none_code, none_message = "iCalUIdNotFound", "no event in the organizer's mailbox has this iCalUId"
            many_code = "iCalUIdAmbiguous"
        else:
            start, end = request.occurrence_window()
            found = graph.occurrence_ids(request.organizer, str(request.eventId), start, end, request_id=self.record.id)
            none_code = "occurrenceNotFound"
            none_message = f"the series has no occurrence on {request.occurrenceDate} in {request.timeZone}"
            many_code = "occurrenceAmbiguous"
        if not found:
            return self._finish(Status.FAILED, error_code=none_code, error_message=none_message)
        if len(found) > 1:
            return self._finish(
                Status.FAILED,
                error_code=many_code,
                error_message=f"{len(found)} events match; name the one to cancel by its eventId",
            )
        self._save(self.record.evolve(event_id=found[0]))
        return None

    def _cancel_once(self) -> Outcome:
        graph = self.service.graph
        organizer, event_id = self.record.organizer, self.record.event_id
        if self.record.outcome_unknown or self.record.in_flight_until:
            log.warning("an earlier attempt has an unknown outcome; reading the event first", extra=self.context)
            if not graph.event_exists(organizer, event_id, request_id=self.record.id):
                return self._finish(
                    Status.CANCELLED,
                    resolution="verified: the event was gone after an earlier attempt with an unknown outcome",
                )
            self._save(self.record.evolve(outcome_unknown=False, in_flight_until=None))
        graph.prepare_token()
        claimed = self.record.evolve(
            status=Status.PROCESSING,
            attempts=self.record.attempts + 1,
            outcome_unknown=True,
            in_flight_until=utcnow() + timedelta(seconds=self._lease_seconds()),
        )
        try:
            self._save(claimed)  # recorded before the mailbox slot, so the slot covers the Graph call alone
        except ConcurrentUpdate:
            return self._requeue(BUSY_RETRY_SECONDS, reason="the request changed while being claimed")
        with self.service.limiter.slot(organizer, max_wait=SLOT_MAX_WAIT_SECONDS) as wait:
            if wait:
                self._save(
                    self.record.evolve(attempts=self.record.attempts - 1, outcome_unknown=False, in_flight_until=None)
                )  # nothing was sent
                return self._schedule(wait, reason="this mailbox is being throttled")
            self.cancel_sent = True
            try:
                graph.cancel(organizer, event_id, self.request.comment, request_id=self.record.id)
            except GraphPermanentError as error:
                if error.code == "eventNotFound" and self.record.attempts > 1:
                    return self._finish(
                        Status.CANCELLED, resolution="verified: the event was gone after an earlier attempt"
                    )
                raise
            self.service.limiter.record_success(organizer)
        return self._finish(Status.CANCELLED, resolution="cancelled by Graph")

    def _lease_seconds(self) -> float:
        """How long other deliveries keep off: the wait for a mailbox slot, the call, a margin."""
        return SLOT_MAX_WAIT_SECONDS + self.service.settings.graph_timeout_seconds + LEASE_MARGIN_SECONDS

    def _outcome_unknown_after(self, error: GraphTransientError | None) -> bool:
        """Whether an attempt may have applied: only the cancel call itself can clear that doubt."""
        if self.cancel_sent and error is not None:
            return error.outcome_unknown
        return self.record.outcome_unknown

    def _throttled(self, throttled: GraphThrottled) -> Outcome:
        record = self.record
        count = record.throttle_count + 1
        if throttled.retry_after is not None:
            delay = throttled.retry_after
        else:
            delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (count - 1))
        self.service.limiter.record_throttled(record.organizer, delay)
        since = record.throttled_since or utcnow()
        waited = (utcnow() - since).total_seconds()
        if waited + delay > self.service.settings.throttle_max_wait_seconds:
            return self._finish(
                Status.FAILED,
                error=throttled,
                error_code="throttled",
                error_message=f"Graph kept throttling the request for {waited:.0f} s; gave up",
            )
        self._save(
            record.evolve(
                throttled_since=since,
                throttle_count=count,
                outcome_unknown=self._outcome_unknown_after(throttled),
                in_flight_until=None,
                **_graph_fields(throttled),
            )
        )
        return self._schedule(delay, reason=f"throttled by Graph ({throttled.answer.status})")

    def _transient(self, code: str, message: str, *, error: GraphTransientError | None = None) -> Outcome:
        fields = _graph_fields(error) if error else {"error_code": code, "error_message": message}
        unknown = self._outcome_unknown_after(error)
        if self.delivery.dequeue_count >= self.service.settings.queue_host.max_dequeue_count:
            gave_up = f"{message} (gave up after {self.delivery.dequeue_count} deliveries)"
            self._finish(
                Status.FAILED,
                **{**fields, "error_message": gave_up},
                resolution="the last attempt's outcome is unknown: the cancel may have been sent" if unknown else None,
            )
            raise RetryLater(message)
        retry_in = self.service.settings.queue_host.visibility_timeout_seconds
        self._save(
            self.record.evolve(
                status=Status.RETRYING,
                outcome_unknown=unknown,
                in_flight_until=None,
                next_attempt_at=utcnow() + timedelta(seconds=retry_in),
                delayed_copy_due=None,
                **fields,
            )
        )
        log.warning("transient failure (%s); the host will deliver the message again", code, extra=self.context)
        raise RetryLater(message)

    def _schedule(self, delay: float, *, reason: str) -> Outcome:
        """Puts a delayed copy on the queue first, then records when it will come back."""
        delay = delay + random.uniform(0.0, min(5.0, 0.2 * delay) + 0.5)
        self._send_copy(delay)
        due = utcnow() + timedelta(seconds=delay)
        self._save(
            self.record.evolve(status=Status.RETRYING, in_flight_until=None, next_attempt_at=due, delayed_copy_due=due)
        )
        log.info("request put back for %.1f s: %s", delay, reason, extra=self.context)
        return Outcome.REQUEUED

    def _requeue(self, delay: float, *, reason: str) -> Outcome:
        self._send_copy(delay)
        log.info("message put back for %.1f s: %s", delay, reason, extra=self.context)
        return Outcome.REQUEUED

    def _send_copy(self, delay: float) -> None:
        copy = self.request.model_copy(update={"id": self.record.id})
        self.service.queue.send(copy.model_dump_json(exclude_none=True), delay_seconds=delay)

    def _finish(self, status: Status, *, error: GraphError | None = None, **changes: Any) -> Outcome:
        fields = {**(_graph_fields(error) if error else {}), **changes}
        self.record = _write_final(self.service, self.record, status, **fields)
        level = logging.INFO if status == Status.CANCELLED else logging.WARNING
        log.log(
            level,
            "request %s: %s",
            status,
            fields.get("error_code") or fields.get("resolution", ""),
            extra={**self.context, "graph_request_id": fields.get("graph_request_id")},
        )
        return Outcome.CANCELLED if status == Status.CANCELLED else Outcome.FAILED

    def _save(self, record: StatusRecord) -> None:
        self.record = self.service.store.replace(record)


def _write_final(service: Service, record: StatusRecord, status: Status, **fields: Any) -> StatusRecord:
    """Records a final status; a concurrent writer that already finished the request wins."""
    for _ in range(3):
        try:
            return service.store.replace(
                record.evolve(
                    status=status,
                    in_flight_until=None,
                    outcome_unknown=False,
                    next_attempt_at=None,
                    delayed_copy_due=None,
                    **fields,
                )
            )
        except ConcurrentUpdate:
            latest = service.store.get(record.id)
            if latest is None or latest.status.final:
                return latest or record
            record = latest
    raise RetryLater(f"status record {record.id} kept changing")


def _graph_fields(error: GraphError) -> dict[str, Any]:
    answer = error.answer
    return {
        "error_code": error.code,
        "error_message": error.reason,
        "graph_status": answer.status,
        "graph_code": answer.code,
        "graph_request_id": answer.request_id,
        "graph_date": answer.date,
    }
