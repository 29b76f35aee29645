"""Cancelling what an organizer organizes in a window: an HR system offboarding a leaver.

Like Exchange's ``Remove-CalendarEvents -CancelOrganizedMeetings``, but with a message, a preview,
and one tracked cancellation request per meeting through the existing queue, paced to stay within
the mailbox's sending limits (about 30 cancellation mails a minute). A series is cancelled once,
through its master, which cancels every occurrence, as Remove-CalendarEvents does.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .callers import Caller, authorize_read, authorize_submit
from .errors import GraphError, IdentityUnavailable, StorageUnavailable
from .intake import organizer_resolver, parse_model, request_id_for
from .models import (
    FIELD_HELP,
    MAX_COMMENT_LENGTH,
    QueuedCancelRequest,
    _check_comment,
    _check_organizer,
)
from .problems import Problem, storage_unavailable
from .records import Status, StatusRecord, utcnow

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
SECONDS_BETWEEN_SENDS = 2.0  # 30 cancellation mails a minute per mailbox
MAX_MEETINGS = 1000
MAX_WINDOW_DAYS = 732
BATCH_ROW = "batch"


class WindowRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: Annotated[datetime, Field(alias="from", description="Start of the window, with a UTC offset")]
    end: Annotated[datetime, Field(alias="to", description="End of the window, with a UTC offset")]
    comment: Annotated[str | None, Field(max_length=MAX_COMMENT_LENGTH, description=FIELD_HELP["comment"])] = None
    subjectContains: Annotated[
        str | None, Field(min_length=1, max_length=255, description="Only meetings whose subject contains this text")
    ] = None
    preview: Annotated[bool, Field(description="List the meetings without cancelling anything")] = False

    _comment = field_validator("comment")(_check_comment)

    @field_validator("start", "end")
    @classmethod
    def _has_offset(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise PydanticCustomError("offset", "needs a UTC offset, such as 2026-12-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> WindowRequest:
        if self.end <= self.start:
            raise PydanticCustomError("window", "'to' must be after 'from'", {"field": "to"})
        if self.end - self.start > timedelta(days=MAX_WINDOW_DAYS):
            raise PydanticCustomError("window", f"the window may span at most {MAX_WINDOW_DAYS} days", {"field": "to"})
        return self


@dataclass(frozen=True)
class Meeting:
    event_id: str
    subject: str
    start: str
    attendees: int
    series: bool

    def view(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "subject": self.subject,
            "start": self.start,
            "attendees": self.attendees,
            "kind": "series" if self.series else "single",
        }


def find_meetings(service: Service, organizer: str, window: WindowRequest, request_id: str) -> list[Meeting]:
    """The meetings the organizer organizes in the window, not cancelled, with attendees; each
    series once, through its master."""
    found: dict[str, Meeting] = {}
    needle = (window.subjectContains or "").lower()
    for event in service.graph.calendar_view(organizer, window.start, window.end, request_id=request_id):
        if not event.get("isOrganizer") or event.get("isCancelled") or not event.get("attendees"):
            continue
        if needle and needle not in str(event.get("subject", "")).lower():
            continue
        master = event.get("seriesMasterId")
        key = str(master or event["id"])
        if key not in found:  # calendarView is in start order: the first occurrence names the series
            found[key] = Meeting(
                event_id=key,
                subject=str(event.get("subject", "")),
                start=str(event.get("start", {}).get("dateTime", "")),
                attendees=len(event["attendees"]),
                series=bool(master),
            )
    return list(found.values())


def submit(
    service: Service,
    organizer: str,
    body: bytes,
    *,
    caller: Caller,
    content_type: str | None,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Returns the preview or the queued batch, and whether the answer is a preview."""
    try:
        organizer = _check_organizer(organizer)
    except PydanticCustomError as error:
        raise Problem(400, "invalidRequest", "Invalid organizer", f"organizer: {error.message()}") from None
    window = parse_model(body, WindowRequest, content_type=content_type)
    if not service.settings.organizers.allows(organizer):
        raise Problem(
            403, "organizerNotAllowed", "Organizer not allowed", service.settings.organizers.refusal(organizer)
        )
    decision = authorize_submit(caller, organizer, object_id_of=organizer_resolver(service))
    batch_id = request_id_for(idempotency_key, caller)
    try:
        meetings = find_meetings(service, organizer, window, batch_id)
    except (GraphError, IdentityUnavailable) as error:
        raise Problem(
            502,
            "graphUnavailable",
            "Could not list the meetings",
            f"Graph did not list the organizer's calendar: {error}",
            retry_after=30,
        ) from None
    if window.preview:
        return {"organizer": organizer, "count": len(meetings), "meetings": [m.view() for m in meetings]}, True
    if len(meetings) > MAX_MEETINGS:
        raise Problem(
            422,
            "tooManyMeetings",
            "Too many meetings",
            f"The window holds {len(meetings)} meetings; at most {MAX_MEETINGS} go in one batch. Narrow the window.",
        )
    try:
        existing = service.store.get_entity(batch_id, BATCH_ROW)
        if existing is None:
            _queue_children(service, batch_id, organizer, window, meetings, caller, decision)
        elif existing.get("request_hash") != _hash(organizer, window):
            raise Problem(
                422,
                "idempotencyKeyReused",
                "Idempotency key reused",
                "This Idempotency-Key was already used with a different body; use a new key.",
            )
        return batch_view(service, batch_id, caller=caller), False
    except StorageUnavailable as error:
        log.error("batch refused: %s", error)
        raise storage_unavailable() from None


def _queue_children(
    service: Service,
    batch_id: str,
    organizer: str,
    window: WindowRequest,
    meetings: list[Meeting],
    caller: Caller,
    decision: str,
) -> None:
    """Records and queues one request per meeting, spaced so the mailbox sends ~30 notices a minute.
    The batch record is written last: a batch that exists is complete."""
    for index, meeting in enumerate(meetings):
        child_id = str(uuid.uuid5(uuid.UUID(batch_id), meeting.event_id))
        record = StatusRecord(
            id=child_id,
            status=Status.QUEUED,
            organizer=organizer,
            event_id=meeting.event_id,
            target=meeting.event_id,
            source="batch",
            batch_id=batch_id,
            has_comment=window.comment is not None,
            submitted_by=caller.label,
            authorized_by=decision,
        )
        # A retry of a batch that failed half-way finds some records already there; their messages
        # may be missing, so they are sent again: the worker completes a duplicate without a second call.
        service.store.insert(record)
        message = QueuedCancelRequest(
            id=child_id, organizer=organizer, eventId=meeting.event_id, comment=window.comment
        )
        service.queue.send(message.model_dump_json(exclude_none=True), delay_seconds=index * SECONDS_BETWEEN_SENDS)
    service.store.put_entity(
        {
            "PartitionKey": batch_id,
            "RowKey": BATCH_ROW,
            "organizer": organizer,
            "count": len(meetings),
            "request_hash": _hash(organizer, window),
            "submitted_by": caller.label,
            "created_at": utcnow(),
        }
    )
    log.info("queued batch %s: %d meetings of %s (caller %s)", batch_id, len(meetings), organizer, caller.label)


def batch_view(service: Service, batch_id: str, *, caller: Caller) -> dict[str, Any]:
    batch = service.store.get_entity(batch_id, BATCH_ROW)
    if batch is None:
        raise Problem(404, "notFound", "No such batch", f"No batch has the id {batch_id!r}.")
    authorize_read(caller, batch.get("submitted_by"))
    children = service.store.by_batch(batch_id)
    counts = Counter(str(child.status) for child in children)
    return {
        "id": batch_id,
        "organizer": batch["organizer"],
        "total": int(batch["count"]),
        "counts": {status.value: counts.get(status.value, 0) for status in Status},
        "done": all(child.status.final for child in children) and len(children) == int(batch["count"]),
        "requests": [
            {
                "id": c.id,
                "eventId": c.event_id,
                "status": str(c.status),
                **({"error": c.error_code} if c.error_code and c.status == Status.FAILED else {}),
            }
            for c in sorted(children, key=lambda c: c.created_at)
        ],
    }


def _hash(organizer: str, window: WindowRequest) -> str:
    import hashlib

    canonical = json.dumps({"organizer": organizer, **window.model_dump(mode="json", by_alias=True)}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
