"""The HTTP door: check a cancel request, record it, queue it; and report its status.

A request is recorded before it is queued and the record is removed again if queueing fails, so
a 202 always means "durably queued" and a 503 always means "nothing happened, try again". A
storage outage propagates as ``StorageUnavailable``; the HTTP adapter answers it with the 503.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import idempotency, lifecycle, steps
from .callers import Caller, ObjectIdResolver, authorize_read, authorize_submit
from .errors import GraphError, GraphPermanentError, IdentityUnavailable, StorageUnavailable
from .models import (
    TRACKING_ID,
    CancellationError,
    CancellationStatus,
    CancelRequest,
    GraphErrorDetail,
    QueuedCancelRequest,
)
from .parsing import parse_request
from .problems import Problem
from .records import Status, StatusRecord, utcnow
from .work_queue import RecordNote

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
    service: Service, body: bytes, *, caller: Caller, content_type: str | None, idempotency_key: str | None
) -> Accepted:
    request = parse_request(body, content_type=content_type)
    try:
        service.settings.organizers.require(request.organizer)
        decision = authorize_submit(caller, request.organizer, object_id_of=organizer_resolver(service))
    except Problem as refusal:
        log.warning("refused: %s (caller %s)", refusal.code, caller.label)
        raise
    body_hash = fingerprint(request)
    request_id = idempotency.request_id_for(idempotency_key, caller)
    record = lifecycle.accept(
        request_id,
        request,
        source="http",
        now=service.clock(),
        body_hash=body_hash,
        submitted_by=caller.label,
        authorized_by=decision,
    )
    stored = service.store.insert(record)
    if stored is None:
        return _replay(service, request_id, body_hash)
    try:
        # The message carries the record as stored, ETag included: the worker claims it with one
        # conditional write instead of reading it first.
        service.queue.send(QueuedCancelRequest(id=request_id, **request.model_dump()), note=RecordNote(record=stored))
    except StorageUnavailable:
        _forget(service, request_id)
        raise
    log.info(
        "queued cancellation request %s for %s (caller %s, allowed by %s)",
        request_id,
        request.organizer,
        caller.label,
        decision,
    )
    return Accepted(stored, replayed=False)


def fingerprint(request: CancelRequest) -> str:
    """The same fingerprint the worker compares a message with (``steps.fingerprint``)."""
    return steps.fingerprint(request)


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
                date=record.graph_date,
            )
        error = CancellationError(code=record.error_code, message=record.error_message or "", graph=graph)
    view = CancellationStatus(
        id=record.id,
        status=record.status.value,
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
    )
    return view.model_dump(mode="json", by_alias=True, exclude_none=True)


def poll_after_seconds(record: StatusRecord) -> int:
    if record.status == Status.RETRYING and record.next_attempt_at:
        wait = (record.next_attempt_at - utcnow()).total_seconds()
        return int(min(MAX_POLL_AFTER_SECONDS, max(POLL_AFTER_SECONDS, wait)))
    return POLL_AFTER_SECONDS


def _replay(service: Service, request_id: str, body_hash: str) -> Accepted:
    existing = service.store.get(request_id)
    if existing is None:
        raise StorageUnavailable("the request vanished while being replayed", operation="idempotent replay")
    idempotency.check_replay(existing.body_hash, body_hash)
    log.info("idempotent replay", extra={"request_id": request_id})
    return Accepted(existing, replayed=True)


def _forget(service: Service, request_id: str) -> None:
    """Removes a record whose message could not be queued, so nothing half-written remains."""
    try:
        service.store.delete(request_id)
    except StorageUnavailable as error:
        log.error("could not remove unqueued request %s: %s", request_id, error)
