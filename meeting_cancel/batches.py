"""Cancelling what an organizer organizes in a window: an HR system offboarding a leaver.

Like Exchange's ``Remove-CalendarEvents -CancelOrganizedMeetings``, but with a message, a preview,
and one tracked cancellation request per meeting through the existing queue, paced to stay within
the mailbox's sending limits (about 30 cancellation mails a minute). A series is cancelled once,
through its master, which cancels every occurrence, as Remove-CalendarEvents does.

A replayed batch (same ``Idempotency-Key``) is answered from storage before Graph is asked
anything, so a retry never fails because Graph is unavailable for a batch that already exists.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError

from . import idempotency, lifecycle
from .batch_models import (
    BatchPreview,
    BatchRecord,
    BatchRequestView,
    BatchStatus,
    MeetingView,
    WindowRequest,
)
from .callers import Caller, authorize_read, authorize_submit
from .errors import GraphError, IdentityUnavailable
from .intake import organizer_resolver
from .models import QueuedCancelRequest, _check_organizer
from .parsing import parse_model
from .problems import Problem
from .records import Status
from .work_queue import RecordNote

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
SECONDS_BETWEEN_SENDS = 2.0  # 30 cancellation mails a minute per mailbox
MAX_MEETINGS = 1000


def find_meetings(service: Service, organizer: str, window: WindowRequest, request_id: str) -> list[MeetingView]:
    """The meetings the organizer organizes in the window, not cancelled, with attendees; each
    series once, through its master."""
    found: dict[str, MeetingView] = {}
    needle = (window.subjectContains or "").lower()
    for event in service.graph.calendar_view(organizer, window.start, window.end, request_id=request_id):
        if not event.get("isOrganizer") or event.get("isCancelled") or not event.get("attendees"):
            continue
        if needle and needle not in str(event.get("subject", "")).lower():
            continue
        master = event.get("seriesMasterId")
        key = str(master or event["id"])
        if key not in found:  # calendarView is in start order: the first occurrence names the series
            found[key] = MeetingView(
                eventId=key,
                subject=str(event.get("subject", "")),
                start=str(event.get("start", {}).get("dateTime", "")),
                attendees=len(event["attendees"]),
                kind="series" if master else "single",
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
    service.settings.organizers.require(organizer)
    batch_id = idempotency.request_id_for(idempotency_key, caller)
    request_hash = fingerprint(organizer, window)
    if not window.preview:
        existing = service.store.get_batch(batch_id)
        if existing is not None:
            # A replay, answered from storage before Graph is asked anything: the id is the caller's
            # own (their label and key), so this is a status read by the batch's submitter.
            idempotency.check_replay(existing.request_hash, request_hash)
            return batch_view(service, batch_id, caller=caller), False
    decision = authorize_submit(caller, organizer, object_id_of=organizer_resolver(service))
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
        preview = BatchPreview(organizer=organizer, count=len(meetings), meetings=meetings)
        return preview.model_dump(mode="json"), True
    if len(meetings) > MAX_MEETINGS:
        raise Problem(
            422,
            "tooManyMeetings",
            "Too many meetings",
            f"The window holds {len(meetings)} meetings; at most {MAX_MEETINGS} go in one batch. Narrow the window.",
        )
    batch = BatchRecord(
        id=batch_id,
        organizer=organizer,
        count=len(meetings),
        request_hash=request_hash,
        submitted_by=caller.label,
        created_at=service.clock(),
    )
    _queue_children(service, batch, window, meetings, decision)
    return batch_view(service, batch_id, caller=caller), False


def fingerprint(organizer: str, window: WindowRequest) -> str:
    return idempotency.fingerprint({"organizer": organizer, **window.model_dump(mode="json", by_alias=True)})


def _queue_children(
    service: Service, batch: BatchRecord, window: WindowRequest, meetings: list[MeetingView], decision: str
) -> None:
    """Records and queues one request per meeting, spaced so the mailbox sends ~30 notices a minute.
    The batch record is written last: a batch that exists is complete."""
    for index, meeting in enumerate(meetings):
        child_id = str(uuid.uuid5(uuid.UUID(batch.id), meeting.eventId))
        message = QueuedCancelRequest(
            id=child_id, organizer=batch.organizer, eventId=meeting.eventId, comment=window.comment
        )
        record = lifecycle.accept(
            child_id,
            message,
            source="batch",
            now=service.clock(),
            batch_id=batch.id,
            submitted_by=batch.submitted_by,
            authorized_by=decision,
        )
        # A retry of a batch that failed half-way finds some records already there; their messages
        # may be missing, so they are sent again: the worker completes a duplicate without a second call.
        stored = service.store.insert(record)
        note = RecordNote(record=stored) if stored is not None else RecordNote(exists=True)
        service.queue.send(message, delay_seconds=index * SECONDS_BETWEEN_SENDS, note=note)
    service.store.put_batch(batch)
    log.info(
        "queued batch %s: %d meetings of %s (caller %s)", batch.id, batch.count, batch.organizer, batch.submitted_by
    )


def batch_view(service: Service, batch_id: str, *, caller: Caller) -> dict[str, Any]:
    batch = service.store.get_batch(batch_id)
    if batch is None:
        raise Problem(404, "notFound", "No such batch", f"No batch has the id {batch_id!r}.")
    authorize_read(caller, batch.submitted_by)
    children = service.store.by_batch(batch_id)
    counts = Counter(str(child.status) for child in children)
    view = BatchStatus(
        id=batch_id,
        organizer=batch.organizer,
        total=batch.count,
        counts={status.value: counts.get(status.value, 0) for status in Status},
        done=all(child.status.final for child in children) and len(children) == batch.count,
        requests=[
            BatchRequestView(
                id=c.id,
                eventId=c.event_id,
                status=str(c.status),
                error=c.error_code if c.error_code and c.status == Status.FAILED else None,
            )
            for c in sorted(children, key=lambda c: c.created_at)
        ],
    )
    return view.model_dump(mode="json", exclude_none=True)
