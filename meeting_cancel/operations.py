"""An operator's controls: abort a request (or a whole batch) before it reaches Graph, and retry one
that failed for a reason that may pass — through the API, or by moving its poison message back.

Both are lifecycle moves written with the ETag of the record they were decided on, so they race
the worker safely:

* ``abort`` is decided on a record with no Graph call in flight and no unknown outcome. The worker's
  ``claim`` is stored before Graph is called; of the two conditional writes exactly one succeeds.
  If the claim wins, abort re-reads, sees the call in flight and answers ``409 inFlight``; if abort
  wins, the claim fails, the worker puts its message back and the next delivery finds the request
  final. So a request never ends ``aborted`` with a cancel sent.
* ``retry`` queues the request's message, then moves ``failed`` back to ``queued``. Whatever fails
  after the send, the worker finds the fresh message of a failed request and treats it as a redrive
  (below), so the request is retried once; if the send fails nothing changed. When the last
  attempt's outcome was unknown the doubt is kept, so the worker reads the event before any new cancel.

Redrive by hand: the host copies a poisoned message to ``<queue>-poison`` as a NEW message (the
WebJobs ``QueueProcessor`` sends its text again: new id, dequeue count from zero), so a message an
operator moves back is first delivered with dequeue count 1, after the request failed. The rule
(``is_redrive``): a delivery of a request that ``failed`` for a retryable reason, whose message
was put on the queue after the failure was recorded, is a redrive: the worker retries the request
(the same move as the API) and makes one more real attempt. Any delivery of such a message counts,
not only the first: a first delivery that failed before it recorded the redrive leaves the request
``failed``, and the next delivery must still redrive it (once redriven, a later failure is newer
than the message, so the message never redrives it twice).
Copies the worker itself put on the queue were sent before the request failed, so they stay
duplicates. The queue reports insertion times in whole seconds (RFC 1123), so "after" means "in
the same second or later": a copy the worker sent in the very second the request failed would
also count; that costs one more attempt, never a second notice, since a failed request's meeting
was not cancelled (or, when that is unknown, the attempt reads the event first).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import lifecycle, steps, telemetry
from .callers import Caller, authorize_read
from .errors import ConcurrentUpdate, StorageUnavailable
from .intake import find
from .models import QueuedCancelRequest
from .parsing import validated
from .problems import Problem
from .records import Status, StatusRecord
from .work_queue import RecordNote

if TYPE_CHECKING:
    from .deliveries import Delivery
    from .service import Service

log = logging.getLogger(__name__)
# Failures a later attempt can change: Graph or the identity endpoint was unavailable or throttling,
# or the deliveries ran out on one of those (the code stays the transient one), or on an unexpected
# error (``error_steps.UNEXPECTED``).
RETRYABLE_CODES = frozenset(
    {"throttled", "graphUnavailable", "graphUnreachable", "graphNoAnswer", "identityUnavailable", "internalError"}
)
IN_FLIGHT_RETRY_SECONDS = 5
WRITE_TRIES = 3


def abort_refusal(record: StatusRecord, now: datetime) -> Problem | None:
    """Why the request cannot be aborted now, or None when no Graph call can be under way."""
    if record.status.final:
        return Problem(
            409, "alreadyFinal", "Already final", f"Request {record.id} is already {record.status}; nothing to abort."
        )
    if record.in_flight_until and record.in_flight_until > now:
        wait = max(1, int((record.in_flight_until - now).total_seconds()) + 1)
        return Problem(
            409,
            "inFlight",
            "Graph call in flight",
            f"Request {record.id} is being sent to Graph now; read its status after the call.",
            retry_after=wait,
        )
    if record.outcome_unknown:
        return Problem(
            409,
            "inFlight",
            "Graph call may have applied",
            f"Request {record.id} was sent to Graph and the outcome is not known yet; the next attempt reads "
            "the event first. Read its status again later.",
            retry_after=IN_FLIGHT_RETRY_SECONDS,
        )
    return None


def abort(service: Service, request_id: str, *, caller: Caller) -> StatusRecord:
    record = find(service, request_id, caller=caller)
    for _ in range(WRITE_TRIES):
        refusal = abort_refusal(record, service.clock())
        if refusal is not None:
            raise refusal
        try:
            aborted = service.store.replace(lifecycle.abort(record, now=service.clock(), by=caller.label))
        except ConcurrentUpdate:
            latest = service.store.get(request_id)
            if latest is None:
                detail = f"No cancellation request has the id {request_id!r}."
                raise Problem(404, "notFound", "No such request", detail) from None
            if latest.status == Status.ABORTED:  # this write's answer was lost, or another abort won: done
                return latest
            record = latest
            continue
        log.warning("request %s aborted by %s", request_id, caller.label, extra={"request_id": request_id})
        return aborted
    raise Problem(
        409,
        "inFlight",
        "Request busy",
        f"Request {request_id} kept changing; try again.",
        retry_after=IN_FLIGHT_RETRY_SECONDS,
    )


def abort_batch(service: Service, batch_id: str, *, caller: Caller) -> list[StatusRecord]:
    """Aborts every child not yet sent; children in flight or final are left as they are."""
    batch = service.store.get_batch(batch_id)
    if batch is None:
        raise Problem(404, "notFound", "No such batch", f"No batch has the id {batch_id!r}.")
    authorize_read(caller, batch.submitted_by)
    aborted, unreachable = [], 0
    for child in service.store.by_batch(batch_id):
        try:
            done = _abort_child(service, child, caller)
        except StorageUnavailable as error:  # go on with the others; this one is reported below
            unreachable += 1
            log.warning("request %s: not aborted with batch %s: %s", child.id, batch_id, error)
            continue
        if done is not None:
            aborted.append(done)
            log.warning(
                "request %s aborted by %s with batch %s",
                done.id,
                caller.label,
                batch_id,
                extra={"request_id": done.id},
            )
    log.warning("batch %s: %d requests aborted by %s", batch_id, len(aborted), caller.label)
    if unreachable:
        raise Problem(
            503,
            "partiallyAborted",
            "Batch partly aborted",
            f"{len(aborted)} requests of batch {batch_id} were aborted; storage refused {unreachable}. Send the "
            "abort again: it aborts the rest that are not yet sent.",
            retry_after=IN_FLIGHT_RETRY_SECONDS,
        )
    return aborted


def _abort_child(service: Service, child: StatusRecord | None, caller: Caller) -> StatusRecord | None:
    """Aborts one child unless it is final or may be at Graph. A child that changed meanwhile (a
    link, a resolve, a back-off) is read again and judged on what it is now; a claim wins."""
    for _ in range(WRITE_TRIES):
        if child is None or abort_refusal(child, service.clock()) is not None:
            return None
        try:
            return service.store.replace(lifecycle.abort(child, now=service.clock(), by=caller.label))
        except ConcurrentUpdate:
            child = service.store.get(child.id)
    return None


def retry_refusal(record: StatusRecord) -> Problem | None:
    if record.status != Status.FAILED:
        state = "still pending" if not record.status.final else f"{record.status}, not failed"
        return Problem(
            409, "notFailed", "Not failed", f"Request {record.id} is {state}; only failed requests are retried."
        )
    if record.error_code not in RETRYABLE_CODES:
        return Problem(
            409,
            "permanentFailure",
            "Failure is permanent",
            f"Request {record.id} failed with {record.error_code}: {record.error_message}. Another attempt would "
            "get the same answer; fix the cause and submit a new request.",
        )
    return None


def retry(
    service: Service, request_id: str, body: dict[str, Any], *, caller: Caller, traceparent: str | None = None
) -> StatusRecord:
    """Queues the request's message again, then records it ``queued``: the trace goes on from the
    operator's request (``traceparent``)."""
    record = find(service, request_id, caller=caller)
    refusal = retry_refusal(record)
    if refusal is not None:
        raise refusal
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise Problem(400, "invalidRequest", "Invalid comment", "comment: send the text sent to the attendees.")
    if record.has_comment and comment is None:
        raise Problem(
            422,
            "commentRequired",
            "Comment required",
            'The service never stores the comment text; send it again as {"comment": "..."}, or move the '
            "request's message from the poison queue back to the work queue (it carries the comment).",
        )
    message = request_of(record, comment if record.has_comment else None)
    if record.body_hash is not None and steps.fingerprint(message) != record.body_hash:
        raise Problem(
            422,
            "commentMismatch",
            "Not the comment of the request",
            "The comment differs from the one the request was submitted with; send that comment again, or "
            "submit a new request for another text.",
        )
    # The message goes first: once it is on the queue the request is retried whatever fails next, as
    # the worker treats a fresh message for a failed request as a redrive (``is_redrive``).
    # "a record exists": the worker reads it first, so a record the write below never moved is redriven
    traced = message.model_copy(update={"traceparent": telemetry.current_traceparent(traceparent)})
    try:
        service.queue.send(traced, note=RecordNote(exists=True))
    except StorageUnavailable as error:  # refused, or stored with its answer lost: either may be true
        raise retry_outcome_unknown(request_id) from error
    reopened = lifecycle.retry(record, now=service.clock(), by=caller.label)
    try:
        reopened = service.store.replace(reopened)
    except (ConcurrentUpdate, StorageUnavailable) as error:  # the message is queued whatever this write did
        latest = _read_quietly(service, request_id) if isinstance(error, ConcurrentUpdate) else None
        if latest is not None and latest.status != Status.FAILED:  # the worker's redrive, or another retry
            reopened = latest
        else:
            log.warning("request %s: retry queued, its record not yet moved (%s)", request_id, error)
    log.warning(
        "request %s retried by %s after %s",
        request_id,
        caller.label,
        record.error_code,
        extra={"request_id": request_id},
    )
    return reopened


def retry_outcome_unknown(request_id: str) -> Problem:
    return Problem(
        503,
        "outcomeUnknown",
        "Retry may be queued",
        f"Storage did not confirm the retry's message for {request_id}. Read the request: if it is still "
        "failed, send the retry again (a message queued twice is processed once).",
        retry_after=IN_FLIGHT_RETRY_SECONDS,
    )


def _read_quietly(service: Service, request_id: str) -> StatusRecord | None:
    try:
        return service.store.get(request_id)
    except StorageUnavailable:
        return None


def request_of(record: StatusRecord, comment: str | None) -> QueuedCancelRequest:
    """The queue message of a stored request, rebuilt from what it named (``CancelRequest.target``)."""
    target = record.target or record.event_id
    fields: dict[str, Any] = {"id": record.id, "organizer": record.organizer, "comment": comment}
    if target.startswith("iCalUId:"):
        fields["iCalUId"] = target.removeprefix("iCalUId:")
    elif target.endswith("]") and "@" in target:
        event_id, _, rest = target.rpartition("@")
        day, _, zone = rest.partition("[")
        fields.update(eventId=event_id, occurrenceDate=day, timeZone=zone.removesuffix("]"))
    else:
        fields["eventId"] = target
    return validated(QueuedCancelRequest, fields)  # the stored parts are valid; a new comment may not be


def is_redrive(record: StatusRecord, delivery: Delivery) -> bool:
    """A poison message moved back by hand (see the module docstring for the rule)."""
    return (
        record.status == Status.FAILED
        and record.error_code in RETRYABLE_CODES
        and delivery.inserted_at is not None
        and delivery.inserted_at >= record.updated_at.replace(microsecond=0)  # the queue reports whole seconds
    )


def redrive(service: Service, record: StatusRecord) -> StatusRecord:
    """The worker's side of a redrive: the same move as the API's retry (the message is here already)."""
    try:
        reopened = service.store.replace(lifecycle.retry(record, now=service.clock(), by="redrive"))
    except ConcurrentUpdate:
        return service.store.get(record.id) or record
    log.warning(
        "request %s redriven from the poison queue after %s",
        record.id,
        record.error_code,
        extra={"request_id": record.id},
    )
    return reopened
