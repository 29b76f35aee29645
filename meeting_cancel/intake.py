"""The HTTP door: check a cancel request, record it, queue it; and report its status.

A request is recorded before it is queued and the record is removed again if queueing fails, so
a 202 always means "durably queued" and a 503 always means "nothing happened, try again".
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from .callers import Caller, ObjectIdResolver, authorize_read, authorize_submit
from .errors import GraphError, GraphPermanentError, IdentityUnavailable, StorageUnavailable
from .models import (
    TRACKING_ID,
    CancellationError,
    CancellationStatus,
    CancelRequest,
    GraphErrorDetail,
    QueuedCancelRequest,
    describe_errors,
    validation_detail,
)
from .problems import Problem, storage_unavailable
from .records import Status, StatusRecord, utcnow

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_BODY_BYTES = 64 * 1024
POLL_AFTER_SECONDS = 2
MAX_POLL_AFTER_SECONDS = 60
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_IDEMPOTENCY_NAMESPACE = uuid.UUID("4f1b8a52-7d1e-4c57-9d36-1f0b6f2a9c11")
_JSON_TYPE = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


@dataclass(frozen=True)
class Accepted:
    record: StatusRecord
    replayed: bool


def submit(
    service: Service, body: bytes, *, caller: Caller, content_type: str | None, idempotency_key: str | None
) -> Accepted:
    request = parse_request(body, content_type=content_type)
    if not service.settings.organizers.allows(request.organizer):
        log.warning("refused by the organizer policy (caller %s)", caller.label)
        raise Problem(
            403, "organizerNotAllowed", "Organizer not allowed", service.settings.organizers.refusal(request.organizer)
        )
    try:
        decision = authorize_submit(caller, request.organizer, object_id_of=organizer_resolver(service))
    except Problem as refusal:
        log.warning("refused: %s (caller %s)", refusal.code, caller.label)
        raise
    body_hash = _fingerprint(request)
    request_id = request_id_for(idempotency_key, caller)
    record = StatusRecord.queued(
        request_id, request, source="http", body_hash=body_hash, submitted_by=caller.label, authorized_by=decision
    )
    try:
        stored = service.store.insert(record)
        if stored is None:
            return _replay(service, request_id, body_hash)
        message = QueuedCancelRequest(id=request_id, **request.model_dump())
        try:
            service.queue.send(message.model_dump_json(exclude_none=True))
        except StorageUnavailable:
            _forget(service, request_id)
            raise
    except StorageUnavailable as error:
        log.error("intake refused: %s", error)
        raise storage_unavailable() from None
    log.info(
        "queued cancellation request %s for %s (caller %s, allowed by %s)",
        request_id,
        request.organizer,
        caller.label,
        decision,
    )
    return Accepted(stored, replayed=False)


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


def parse_request(body: bytes, *, content_type: str | None) -> CancelRequest:
    return parse_model(body, CancelRequest, content_type=content_type)


def parse_model(body: bytes, model: type[ModelT], *, content_type: str | None) -> ModelT:
    """The body as ``model``, or a 4xx problem listing every bad field."""
    document = parse_json(body, content_type=content_type)
    try:
        return model.model_validate(document)
    except ValidationError as error:
        errors = describe_errors(error, model)
        raise Problem(400, "invalidRequest", "Invalid request", validation_detail(errors), errors) from None


def parse_json(body: bytes, *, content_type: str | None) -> Any:
    """The body as JSON, or the 413, 415 or 400 problem that says what to send instead."""
    if len(body) > MAX_BODY_BYTES:
        raise Problem(
            413,
            "bodyTooLarge",
            "Body too large",
            f"The body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted. Shorten the comment.",
        )
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    if not _JSON_TYPE.fullmatch(media_type):
        raise Problem(
            415,
            "unsupportedMediaType",
            "Unsupported media type",
            f"The body was sent as {media_type!r}; send JSON with 'Content-Type: application/json'.",
        )
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Problem(400, "malformedJson", "Malformed JSON", "The body is not UTF-8 text.") from None
    except json.JSONDecodeError as error:
        raise Problem(
            400,
            "malformedJson",
            "Malformed JSON",
            f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}.",
        ) from None
    return document


def find(service: Service, request_id: str, *, caller: Caller) -> StatusRecord:
    if not TRACKING_ID.fullmatch(request_id):
        raise Problem(
            400,
            "invalidId",
            "Invalid tracking id",
            "A tracking id has 1 to 128 letters, digits, '.', '_', ':' and '-'.",
        )
    try:
        record = service.store.get(request_id)
    except StorageUnavailable as error:
        log.error("status lookup failed: %s", error)
        raise storage_unavailable() from None
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
    if existing.body_hash != body_hash:
        raise Problem(
            422,
            "idempotencyKeyReused",
            "Idempotency key reused",
            "This Idempotency-Key was already used with a different body; use a new key for a different request.",
        )
    log.info("idempotent replay", extra={"request_id": request_id})
    return Accepted(existing, replayed=True)


def request_id_for(idempotency_key: str | None, caller: Caller) -> str:
    """A fresh id, or one derived from the caller and their key, so replays find the same record
    and two callers' keys never collide."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise Problem(
            400,
            "invalidIdempotencyKey",
            "Invalid Idempotency-Key",
            "The Idempotency-Key header takes 1 to 255 visible ASCII characters, such as a UUID.",
        )
    return str(uuid.uuid5(_IDEMPOTENCY_NAMESPACE, f"{caller.label}\n{idempotency_key}"))


def _fingerprint(request: CancelRequest) -> str:
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _forget(service: Service, request_id: str) -> None:
    """Removes a record whose message could not be queued, so nothing half-written remains."""
    try:
        service.store.delete(request_id)
    except StorageUnavailable as error:
        log.error("could not remove unqueued request %s: %s", request_id, error)
