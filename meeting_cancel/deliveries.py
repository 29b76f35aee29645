"""A queue delivery as it arrives and as it leaves: the message read into a request (or moved
to poison at once when no retry can make it readable), the outcome the host is told, a final
status written whatever else wrote meanwhile, and what an error nobody handled does on the last
delivery. The attempt itself, the steps between arriving and leaving, is ``worker``'s."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import error_steps, lifecycle, telemetry
from .errors import ConcurrentUpdate
from .failures import Failure
from .models import TRACKING_ID, QueuedCancelRequest
from .parsing import UnreadableJson, describe_errors, load_json, validation_detail
from .records import StatusRecord
from .work_queue import RecordNote, decode, take_note

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
FINAL_WRITE_TRIES = 3


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


def read(service: Service, delivery: Delivery) -> tuple[QueuedCancelRequest, str, RecordNote] | Outcome:
    text = decode(delivery.body)
    if text is None:
        return poison(
            service,
            delivery,
            None,
            Failure("unreadableMessage", "the message is neither JSON text nor base64-encoded JSON"),
        )
    try:
        document: Any = load_json(text)
    except UnreadableJson as error:
        return poison(service, delivery, None, Failure("unreadableMessage", f"the message is not valid JSON: {error}"))
    note = take_note(document) if isinstance(document, dict) else RecordNote()
    claimed_id = document.get("id") if isinstance(document, dict) else None
    request_id = claimed_id if isinstance(claimed_id, str) and TRACKING_ID.fullmatch(claimed_id) else None
    try:
        request = QueuedCancelRequest.model_validate(document)
    except ValidationError as error:
        detail = validation_detail(describe_errors(error, QueuedCancelRequest))
        return poison(service, delivery, request_id, Failure("invalidMessage", detail))
    return request, request.id or delivery.message_id, note


def poison(service: Service, delivery: Delivery, request_id: str | None, failure: Failure) -> Outcome:
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


def on_unhandled(
    service: Service,
    delivery: Delivery,
    request: QueuedCancelRequest,
    request_id: str,
    error: Exception,
    *,
    claimed_here: bool,
) -> None:
    """Performs ``error_steps.after_unexpected`` for an error leaving ``process``: on the last delivery
    the request is recorded failed before the host moves the message to poison."""
    context = {"request_id": request_id, "message_id": delivery.message_id, "dequeue_count": delivery.dequeue_count}
    if not service.retry_policy.last_delivery(delivery.dequeue_count):  # the host delivers it again: no read
        if not isinstance(error, RetryLater):
            log.error("delivery failed: %s", type(error).__name__, extra=context, exc_info=error)
        return
    try:
        record = service.store.get(request_id)
        decision = error_steps.after_unexpected(
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
        write_final(
            service, record, lambda r: lifecycle.fail(r, now=service.clock(), failure=failure, resolution=resolution)
        )
        log.error("request failed on its last delivery: %s", failure.message, extra=context, exc_info=error)
        telemetry.record_poisoned(failure.code)  # the host moves the message to poison next
    except Exception as recording:  # the original error is what the host sees
        log.error("could not record the failure of the last delivery: %s", recording, extra=context)


def write_final(service: Service, record: StatusRecord, move: Callable[[StatusRecord], StatusRecord]) -> StatusRecord:
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
