"""Cancelling what an organizer organizes in a window: an HR system offboarding a leaver.

Like Exchange's ``Remove-CalendarEvents -CancelOrganizedMeetings``, but with a message, a preview,
and one tracked cancellation request per meeting through the existing queue (``window_meetings``
finds them). Nothing is paced here: the worker holds Graph's 4 concurrent requests per mailbox and
Exchange's recipient rate limit (the recipient budget, shared with single requests), and each
child carries its attendee count so the worker counts it without reading the event first.

A replayed batch (same ``Idempotency-Key``) is answered from storage before Graph is asked
anything, so a retry never fails because Graph is unavailable for a batch that already exists.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic_core import PydanticCustomError

from . import idempotency, lifecycle, steps, telemetry
from .batch_models import (
    BatchPreview,
    BatchRecord,
    BatchRequestView,
    BatchStatus,
    MeetingView,
    WindowRequest,
)
from .callers import Caller, authorize_read, authorize_submit
from .errors import GraphError, GraphPermanentError, IdentityUnavailable
from .intake import organizer_resolver
from .models import MAX_ATTENDEES, MAX_ORGANIZER_LENGTH, TRACKING_ID, QueuedCancelRequest, _check_organizer
from .parsing import parse_model, validation_detail
from .problems import Problem
from .records import Status, StatusRecord
from .window_meetings import estimated_completion, find_meetings
from .work_queue import RecordNote

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
MAX_MEETINGS = 1000


def submit(
    service: Service,
    organizer: str,
    body: bytes,
    *,
    caller: Caller,
    content_type: str | None,
    idempotency_key: str | None,
    traceparent: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Returns the preview or the queued batch, and whether the answer is a preview. Every child's
    message continues the trace of the batch's request (``traceparent``)."""
    organizer, window = _read(organizer, body, content_type)
    service.settings.organizers.require(organizer)
    batch_id = idempotency.request_id_for(idempotency_key, caller, service.store)
    request_hash = fingerprint(organizer, window)
    if not window.preview:
        existing = service.store.get_batch(batch_id)
        if existing is not None:
            # A replay, answered from storage before Graph is asked anything: the id is the caller's
            # own (their scope and key), so this is a status read by the batch's submitter.
            idempotency.check_replay(existing.request_hash, request_hash)
            return batch_view(service, batch_id, caller=caller), False
    decision = authorize_submit(caller, organizer, object_id_of=organizer_resolver(service))
    meetings = _listed(service, organizer, window, batch_id)
    recipients = sum(m.attendees for m in meetings)
    if window.preview:
        # Reading a mailbox's calendar is worth a line in the log: who, whose, how many.
        log.info("preview of %s's meetings by %s: %d found", organizer, caller.label, len(meetings))
        preview = BatchPreview(
            organizer=organizer,
            count=len(meetings),
            meetings=meetings,
            recipients=recipients,
            estimatedCompletion=estimated_completion(
                service, organizer, [m.attendees for m in meetings], service.clock(), service.budget.usage(organizer)
            ),
        )
        return preview.model_dump(mode="json", exclude_none=True), True
    batch = BatchRecord(
        id=batch_id,
        organizer=organizer,
        count=len(meetings),
        request_hash=request_hash,
        recipients=recipients,
        submitted_by=caller.label,
        created_at=service.clock(),
    )
    children = _queue_children(service, batch, window, meetings, decision, telemetry.current_traceparent(traceparent))
    return _view(service, batch, children), False  # the records just written: no read back per child


def _read(organizer: str, body: bytes, content_type: str | None) -> tuple[str, WindowRequest]:
    """The route's organizer and the body's window, or one 400 listing every bad field of both."""
    errors: list[dict[str, str]] = []
    try:
        if len(organizer) > MAX_ORGANIZER_LENGTH:
            raise PydanticCustomError("organizer", f"is too long: at most {MAX_ORGANIZER_LENGTH} characters")
        organizer = _check_organizer(organizer)
    except PydanticCustomError as error:
        errors.append({"field": "organizer", "message": error.message()})
    try:
        window = parse_model(body, WindowRequest, content_type=content_type)
    except Problem as problem:
        if problem.code != "invalidRequest" or not errors:
            raise
        errors += problem.errors
    if errors:
        raise Problem(400, "invalidRequest", "Invalid request", validation_detail(errors), errors)
    return organizer, window


def _listed(service: Service, organizer: str, window: WindowRequest, batch_id: str) -> list[MeetingView]:
    """The window's meetings, at most ``MAX_MEETINGS`` (a preview is capped as a batch is), or the
    problem that says why Graph could not list them: an unknown organizer is the caller's to fix
    (404), a refusal is the service's (502), an outage passes (502 with Retry-After)."""
    try:
        meetings = find_meetings(service, organizer, window, batch_id, limit=MAX_MEETINGS + 1)
    except GraphPermanentError as error:
        if error.answer.status == 404 and error.code in ("organizerNotFound", "mailboxNotEnabled", "notFound"):
            code = "mailboxNotEnabled" if error.code == "mailboxNotEnabled" else "organizerNotFound"
            raise Problem(
                404,
                code,
                "No such organizer" if code == "organizerNotFound" else "No mailbox",
                f"Graph knows no mailbox for {organizer!r} ({error.answer.code}); check the organizer's "
                "userPrincipalName or object id.",
            ) from None
        raise Problem(
            502,
            error.code,
            "Graph refused to list the meetings",
            f"Graph refused to list the organizer's calendar ({error.answer.status} {error.answer.code}): "
            f"{error.reason}",
        ) from None
    except (GraphError, IdentityUnavailable) as error:
        raise Problem(
            502,
            "graphUnavailable",
            "Could not list the meetings",
            f"Graph did not list the organizer's calendar: {error}",
            retry_after=30,
        ) from None
    if len(meetings) > MAX_MEETINGS:
        log.warning(
            "%s of %s's meetings refused: more than %d",
            "preview" if window.preview else "batch",
            organizer,
            MAX_MEETINGS,
        )
        raise Problem(
            422,
            "tooManyMeetings",
            "Too many meetings",
            f"The window holds more than {MAX_MEETINGS} meetings, the most one batch or preview covers. "
            "Narrow the window.",
        )
    return meetings


def fingerprint(organizer: str, window: WindowRequest) -> str:
    """The batch's fingerprint; the organizer in lower case, as userPrincipalNames are case-insensitive."""
    fields = window.model_dump(mode="json", by_alias=True)
    if fields.get("scope") == "series":
        del fields["scope"]  # the default: batches stored before it existed keep their fingerprint
    return idempotency.fingerprint({"organizer": organizer.lower(), **fields})


def _queue_children(
    service: Service,
    batch: BatchRecord,
    window: WindowRequest,
    meetings: list[MeetingView],
    decision: str,
    traceparent: str,
) -> list[StatusRecord]:
    """Records and queues one request per meeting, each with its attendee count, and returns the
    records. The batch record is written last: a batch that exists is complete."""
    children: list[StatusRecord] = []
    for meeting in meetings:
        child_id = str(uuid.uuid5(uuid.UUID(batch.id), meeting.eventId))
        message = QueuedCancelRequest(
            id=child_id,
            organizer=batch.organizer,
            eventId=meeting.eventId,
            comment=window.comment,
            recipients=min(meeting.attendees, MAX_ATTENDEES),
            traceparent=traceparent,
        )
        record = lifecycle.admit(
            child_id,
            message,
            source="batch",
            now=service.clock(),
            batch_id=batch.id,
            body_hash=steps.fingerprint(message),
            submitted_by=batch.submitted_by,
            authorized_by=decision,
        )
        # A retry of a batch that failed half-way finds some records already there; their messages
        # may be missing, so they are sent again: the worker completes a duplicate without a second call.
        stored = service.store.insert(record)
        # The message carries the record as stored, ETag included: the worker claims with one write.
        service.queue.send(message, note=RecordNote(record=stored) if stored is not None else RecordNote(exists=True))
        children.append(stored or service.store.get(child_id) or record)
    service.store.put_batch(batch)
    log.info(
        "queued batch %s: %d meetings of %s (caller %s)", batch.id, batch.count, batch.organizer, batch.submitted_by
    )
    return children


def batch_view(service: Service, batch_id: str, *, caller: Caller) -> dict[str, Any]:
    if not TRACKING_ID.fullmatch(batch_id):
        raise Problem(
            400, "invalidId", "Invalid batch id", "A batch id has 1 to 128 letters, digits, '.', '_', ':' and '-'."
        )
    batch = service.store.get_batch(batch_id)
    if batch is None:
        raise Problem(404, "notFound", "No such batch", f"No batch has the id {batch_id!r}.")
    authorize_read(caller, batch.submitted_by)
    return _view(service, batch, service.store.by_batch(batch_id))


def _view(service: Service, batch: BatchRecord, children: list[StatusRecord]) -> dict[str, Any]:
    batch_id = batch.id
    counts = Counter(child.status.public for child in children)
    done = all(child.status.final for child in children) and len(children) == batch.count
    pending = [child.recipients or 0 for child in children if not child.status.final]
    view = BatchStatus(
        id=batch_id,
        organizer=batch.organizer,
        total=batch.count,
        counts={status.public: counts.get(status.public, 0) for status in Status},
        done=done,
        recipients=batch.recipients,
        estimatedCompletion=None
        if done
        else estimated_completion(
            service, batch.organizer, pending, service.clock(), service.budget.usage(batch.organizer)
        ),
        requests=[
            BatchRequestView(
                id=c.id,
                eventId=c.event_id,
                status=c.status.public,
                error=c.error_code if c.error_code and c.status == Status.FAILED else None,
            )
            for c in sorted(children, key=lambda c: c.created_at)
        ],
    )
    return view.model_dump(mode="json", exclude_none=True)
