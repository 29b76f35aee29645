"""The HTTP door: check a cancel request, record it, queue it; and report its status.

The record and the message are two writes to two services, so intake makes them converge instead
of pretending they are one:

* the record is written first, ``accepted`` (``lifecycle.admit``): not ``queued`` until its
  message is known to be on the queue. Nothing ever deletes it: once a message may exist, the
  record is what keeps a second delivery from cancelling twice;
* when the queue write fails, or its answer is lost (it may have been stored), the message goes to
  the sweep (``service_rows``, ``sweep``), which re-sends it within minutes: the answer is 202,
  because the request will be carried out without the caller doing anything;
* when handing it to the sweep fails too, the answer is 503 ``outcomeUnknown``: retry with the
  same Idempotency-Key. A keyed retry that finds an ``accepted`` request sends its message again
  (the worker completes a duplicate delivery without a second Graph call) and records ``queued``;
* a 503 ``storageUnavailable`` ("nothing was queued") only when the record could not be written,
  so no message was sent.

Storage operations (README, "Reliability"): 2 on the common path (insert, queue write); a keyed
request also reads the service secret once per process; the sweep's row only when the queue
write failed.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import idempotency, lifecycle, steps, telemetry
from .callers import Caller, ObjectIdResolver, authorize_read, authorize_submit
from .errors import ConcurrentUpdate, GraphError, GraphPermanentError, IdentityUnavailable, StorageUnavailable
from .models import TRACKING_ID, QueuedCancelRequest
from .parsing import parse_request
from .problems import Problem
from .records import Status, StatusRecord, utcnow
from .service_rows import UnqueuedEntry
from .status_view import CancellationError, CancellationStatus, GraphCallView, GraphErrorDetail
from .work_queue import RecordNote, encode

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
POLL_AFTER_SECONDS = 2
MAX_POLL_AFTER_SECONDS = 60


@dataclass(frozen=True)
class Accepted:
    record: StatusRecord
    replayed: bool


def submit(
    service: Service,
    body: bytes,
    *,
    caller: Caller,
    content_type: str | None,
    idempotency_key: str | None,
    traceparent: str | None = None,
) -> Accepted:
    request = parse_request(body, content_type=content_type)
    try:
        service.settings.organizers.require(request.organizer)
        decision = authorize_submit(caller, request.organizer, object_id_of=organizer_resolver(service))
    except Problem as refusal:
        log.warning("refused: %s (caller %s)", refusal.code, caller.label)
        raise
    body_hash = steps.fingerprint(request)
    request_id = idempotency.request_id_for(idempotency_key, caller, service.store)
    trace = telemetry.current_traceparent(traceparent)  # the worker continues this trace
    message = QueuedCancelRequest(id=request_id, traceparent=trace, **request.model_dump())
    record = lifecycle.admit(
        request_id,
        request,
        source="http",
        now=service.clock(),
        body_hash=body_hash,
        submitted_by=caller.label,
        authorized_by=decision,
    )
    stored = service.store.insert(record)  # an outage here is the 503 "nothing was queued": nothing was sent
    if stored is None:
        return _replay(service, message, body_hash)
    log.info(
        "accepted cancellation request %s for %s (caller %s, allowed by %s)",
        request_id,
        request.organizer,
        caller.label,
        decision,
        extra={"request_id": request_id},
    )
    return Accepted(_enqueue(service, stored, message, confirm=False), replayed=False)


def organizer_resolver(service: Service) -> ObjectIdResolver:
    """Resolves an organizer's UPN to its object id through Graph, as authorization problems."""

    def object_id_of(upn: str) -> str | None:
        try:
            return service.graph.user_object_id(upn, request_id=str(uuid.uuid4()))
        except GraphPermanentError as error:
            if error.answer.status == 404:
                return None
            raise Problem(
                403,
                "organizerUnresolvable",
                "Organizer cannot be checked",
                "The service could not look up the organizer's object id (Graph answered "
                f"{error.answer.status}); send the organizer as an object id, or grant the service's "
                "identity the User.Read.All application permission.",
            ) from None
        except (GraphError, IdentityUnavailable):
            raise Problem(
                503,
                "graphUnavailable",
                "Graph unavailable",
                "The service could not look up the organizer in Microsoft Graph; nothing was queued. Try again.",
                retry_after=10,
            ) from None

    return object_id_of


def find(service: Service, request_id: str, *, caller: Caller) -> StatusRecord:
    if not TRACKING_ID.fullmatch(request_id):
        raise Problem(
            400,
            "invalidId",
            "Invalid tracking id",
            "A tracking id has 1 to 128 letters, digits, '.', '_', ':' and '-'.",
        )
    record = service.store.get(request_id)
    if record is None:
        raise Problem(404, "notFound", "No such request", f"No cancellation request has the id {request_id!r}.")
    authorize_read(caller, record.submitted_by)
    return record


def status_view(record: StatusRecord) -> dict[str, Any]:
    """The public shape of a status record (DESIGN 3.1), as the connector's schema describes it."""
    error = None
    if record.error_code and record.status in (Status.FAILED, Status.RETRYING):
        graph = None
        if record.graph_status is not None:
            graph = GraphErrorDetail(
                status=record.graph_status,
                code=record.graph_code,
                request_id=record.graph_request_id,
                client_request_id=record.graph_client_request_id,
                date=record.graph_date,
            )
        error = CancellationError(code=record.error_code, message=record.error_message or "", graph=graph)
    view = CancellationStatus(
        id=record.id,
        status=record.status.public,
        organizer=record.organizer,
        eventId=record.event_id or None,
        target=record.target if record.target != record.event_id else None,
        batchId=record.batch_id,
        follows=record.follows,
        createdAt=record.created_at,
        updatedAt=record.updated_at,
        attempts=record.attempts,
        submittedBy=record.submitted_by,
        nextAttemptAt=record.next_attempt_at if record.status == Status.RETRYING else None,
        resolution=record.resolution if record.status.final else None,
        error=error if record.status == Status.FAILED else None,
        lastError=error if record.status == Status.RETRYING else None,
        recipients=record.recipients,
        graphCalls=[GraphCallView.model_validate(call) for call in json.loads(record.graph_calls)]
        if record.graph_calls
        else None,
    )
    return view.model_dump(mode="json", by_alias=True, exclude_none=True)


def poll_after_seconds(record: StatusRecord) -> int:
    if record.status == Status.RETRYING and record.next_attempt_at:
        wait = (record.next_attempt_at - utcnow()).total_seconds()
        return int(min(MAX_POLL_AFTER_SECONDS, max(POLL_AFTER_SECONDS, wait)))
    return POLL_AFTER_SECONDS


def _replay(service: Service, message: QueuedCancelRequest, body_hash: str) -> Accepted:
    assert message.id is not None
    existing = service.store.get(message.id)
    if existing is None:
        raise StorageUnavailable("the request vanished while being replayed", operation="idempotent replay")
    idempotency.check_replay(existing.body_hash, body_hash)
    log.info("request %s: idempotent replay (%s)", existing.id, existing.status, extra={"request_id": existing.id})
    if existing.status == Status.ACCEPTED:  # its message may be missing: send it again
        existing = _enqueue(service, existing, message, confirm=True)
    return Accepted(existing, replayed=True)


def _enqueue(service: Service, record: StatusRecord, message: QueuedCancelRequest, *, confirm: bool) -> StatusRecord:
    """Sends the message; when that fails, hands it to the sweep; when that fails too, the caller
    is told to retry with the same key. ``confirm``: record ``queued`` once it is sent (a re-send
    does; the first send does not, to save a write on every request)."""
    # The first send carries the record as stored, ETag included: the worker claims it with one
    # conditional write instead of reading it first. A re-send is confirmed after it is sent, so its
    # message only says that a record exists.
    note = RecordNote(exists=True) if confirm else RecordNote(record=record)
    try:
        service.queue.send(message, note=note)
    except StorageUnavailable as error:
        _hand_to_sweep(service, record, message, error)
        return record
    if not confirm:
        return record
    try:
        return service.store.replace(lifecycle.confirm_queued(record, now=service.clock()))
    except (ConcurrentUpdate, StorageUnavailable) as error:  # a worker moved it on, or a later re-send confirms
        log.info(
            "request %s re-sent; not recorded as queued (%s)",
            record.id,
            type(error).__name__,
            extra={"request_id": record.id},
        )
        return record


def _hand_to_sweep(service: Service, record: StatusRecord, message: QueuedCancelRequest, error: Exception) -> None:
    text = encode(message, RecordNote(exists=True))  # the sweep re-sends it: the worker reads the record
    entry = UnqueuedEntry(request_id=record.id, message=text, noted_at=service.clock())
    try:
        service.store.put_unqueued(entry)
    except StorageUnavailable as second:
        log.error(
            "request %s: queue write failed (%s) and the sweep could not take it (%s)",
            record.id,
            error,
            second,
            extra={"request_id": record.id},
        )
        raise outcome_unknown() from second
    log.warning(
        "request %s: queue write failed or lost its answer (%s); the sweep will queue it",
        record.id,
        error,
        extra={"request_id": record.id},
    )


def outcome_unknown() -> Problem:
    return Problem(
        503,
        "outcomeUnknown",
        "Outcome unknown",
        "The request was recorded, but the service could not confirm that it was queued: it may still be "
        "carried out. Retry with the same Idempotency-Key: the retry finds this request and queues it if needed "
        "(a retry without a key may create a second request).",
        retry_after=10,
    )
