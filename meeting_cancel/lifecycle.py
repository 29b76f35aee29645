"""The lifecycle of a cancellation request as data: its statuses, the named moves between them,
and one map of which move may leave which status.

Every change to a status record is one of the moves below; each checks the map before it builds
the new record, so a move the design does not allow raises ``IllegalMove`` instead of being
stored. ``steps`` decides which move comes next; the worker performs it. ``diagram()`` draws the
map, and ARCHITECTURE.md shows that drawing (a test keeps the two equal).

The clock is passed in (``now``): nothing here reads the time or does I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from .errors import IllegalMove
from .failures import Failure
from .records import PENDING, Status, StatusRecord

if TYPE_CHECKING:
    from .models import CancelRequest


class Move(StrEnum):
    ADMIT = "admit"  # an HTTP or batch request is recorded before its message is sent
    ACCEPT = "accept"  # a delivered message nobody recorded yet is recorded: it is on the queue
    CONFIRM_QUEUED = "confirm queued"  # an admitted request's message was re-sent and is on the queue
    REJECT = "reject"  # an invalid queue message claimed an id nobody had: recorded as failed
    RESOLVE = "resolve"  # the Graph id of a meeting named by iCalUId or occurrence was found
    LINK = "link"  # another request holds this meeting's cancellation: this one follows it
    FOLLOW = "follow"  # the followed request cancelled the meeting: so did this one, no call of its own
    TAKE_OVER = "take over"  # the meeting's owner failed for a reason that may pass, or vanished
    CLAIM = "claim"  # recorded before the Graph call: attempt counted, outcome unknown, lease held
    RELEASE = "release"  # the mailbox slot was not free: the claim is undone, nothing was sent
    CONFIRM_PRESENT = "confirm present"  # after an unknown outcome the event was still there
    BACK_OFF = "back off"  # throttled: a delayed copy of the message is on the queue
    RETRY_LATER = "retry later"  # a transient failure: the host delivers the message again
    COMPLETE = "complete"  # Graph cancelled it, or a verification found it gone
    FAIL = "fail"  # a permanent refusal, or the retries ran out
    ABORT = "abort"  # an operator stopped a request before its Graph call (loses to a claim: ETag)
    RETRY = "retry"  # an operator (or a redriven message) sends a request that failed for a passing reason again


Origin = Status | None  # None: no record yet
SAME: None = None  # a move that keeps the status

# move -> (the statuses it may leave, the status it enters)
MOVES: dict[Move, tuple[frozenset[Origin], Status | None]] = {
    Move.ADMIT: (frozenset({None}), Status.ACCEPTED),
    Move.ACCEPT: (frozenset({None}), Status.QUEUED),
    Move.CONFIRM_QUEUED: (frozenset({Status.ACCEPTED}), Status.QUEUED),
    Move.REJECT: (frozenset({None}), Status.FAILED),
    Move.RESOLVE: (PENDING, SAME),
    Move.LINK: (PENDING, SAME),
    Move.FOLLOW: (PENDING, Status.CANCELLED),
    Move.TAKE_OVER: (PENDING, Status.RETRYING),
    Move.CLAIM: (PENDING, Status.PROCESSING),
    Move.RELEASE: (frozenset({Status.PROCESSING}), Status.RETRYING),
    Move.CONFIRM_PRESENT: (PENDING, SAME),  # queued too: a retried request whose outcome was unknown
    Move.BACK_OFF: (PENDING, Status.RETRYING),
    Move.RETRY_LATER: (PENDING, Status.RETRYING),
    Move.COMPLETE: (PENDING, Status.CANCELLED),  # from queued: a retried request verified gone
    Move.FAIL: (PENDING, Status.FAILED),
    Move.ABORT: (PENDING, Status.ABORTED),
    Move.RETRY: (frozenset({Status.FAILED}), Status.QUEUED),
}


def allowed(move: Move, origin: Origin) -> bool:
    return origin in MOVES[move][0]


def _enter(move: Move, record: StatusRecord, now: datetime, **changes: Any) -> StatusRecord:
    """The one place a record changes: checked against MOVES, stamped with ``now``."""
    origins, target = MOVES[move]
    if record.status not in origins:
        raise IllegalMove(f"{move} cannot leave {record.status}", record_id=record.id, move=str(move))
    return replace(record, status=target or record.status, updated_at=now, moved_from=record.status, **changes)


def _create(move: Move, request_id: str, now: datetime, **values: Any) -> StatusRecord:
    """The one constructor path for new records."""
    origins, target = MOVES[move]
    assert None in origins
    assert target is not None
    return StatusRecord(id=request_id, status=target, created_at=now, updated_at=now, **values)


class Provenance(TypedDict, total=False):
    """Where a new request came from and who asked, as its record keeps it."""

    batch_id: str | None
    body_hash: str | None
    submitted_by: str | None
    authorized_by: str | None


def admit(
    request_id: str, request: CancelRequest, *, source: str, now: datetime, **provenance: Unpack[Provenance]
) -> StatusRecord:
    """A new request whose message is still to be sent: ``accepted``, never ``queued``, so that
    whoever finds it next (a keyed retry, the sweep) knows its message may be missing. The worker
    claims it from ``accepted`` directly; recording ``queued`` after every send would cost a write
    on every request and change the ETag the message was sent with."""
    return _new_request(Move.ADMIT, request_id, request, source, now, provenance)


def accept(
    request_id: str, request: CancelRequest, *, source: str, now: datetime, **provenance: Unpack[Provenance]
) -> StatusRecord:
    """A request first recorded by the worker, from a message it was delivered: already queued."""
    return _new_request(Move.ACCEPT, request_id, request, source, now, provenance)


def _new_request(
    move: Move, request_id: str, request: CancelRequest, source: str, now: datetime, provenance: Provenance
) -> StatusRecord:
    """Meetings named by iCalUId or occurrence get their Graph id when resolved."""
    return _create(
        move,
        request_id,
        now,
        organizer=request.organizer,
        event_id="" if request.needs_lookup else str(request.eventId),
        target=request.target,
        source=source,
        has_comment=request.comment is not None,
        recipients=getattr(request, "recipients", None),  # a queue message may say how many get the notice
        **provenance,
    )


def reject(request_id: str, failure: Failure, *, source: str, now: datetime) -> StatusRecord:
    """A message that could not be read claimed this id: the caller can look up why."""
    return _create(Move.REJECT, request_id, now, organizer="", event_id="", source=source, **failure.fields())


def confirm_queued(record: StatusRecord, *, now: datetime) -> StatusRecord:
    """An accepted request's message was sent again (a keyed retry or the sweep) and is on the queue."""
    return _enter(Move.CONFIRM_QUEUED, record, now)


def resolve(record: StatusRecord, event_id: str, *, now: datetime) -> StatusRecord:
    return _enter(Move.RESOLVE, record, now, event_id=event_id)


def link(record: StatusRecord, owner_id: str, *, now: datetime) -> StatusRecord:
    """Another request holds the meeting (``meeting_links``): this one waits for its outcome."""
    return _enter(Move.LINK, record, now, follows=owner_id)


def take_over(record: StatusRecord, *, now: datetime, outcome_unknown: bool) -> StatusRecord:
    """This request now holds the meeting. ``outcome_unknown``: the previous owner may have
    cancelled it, so the event is read before any cancel (``steps.Verify``)."""
    return _enter(
        Move.TAKE_OVER,
        record,
        now,
        follows=None,
        outcome_unknown=outcome_unknown,
        in_flight_until=None,
        next_attempt_at=None,
        delayed_copy_due=None,
    )


def claim(record: StatusRecord, *, now: datetime, lease_seconds: float) -> StatusRecord:
    """Recorded before Graph is called: if anything breaks from here on, the next delivery reads
    the event before calling again, and other deliveries keep off until the lease ends."""
    return _enter(
        Move.CLAIM,
        record,
        now,
        attempts=record.attempts + 1,
        outcome_unknown=True,
        in_flight_until=now + timedelta(seconds=lease_seconds),
    )


def unclaimed(record: StatusRecord, *, outcome_unknown: bool) -> StatusRecord:
    """Undoes what a claim counted when the delivery failed before its cancel was sent (the read
    before it, the recipient budget): the attempt is not counted and the doubt is what earlier
    deliveries left. Not a move: the next move of the delivery carries it."""
    return replace(record, attempts=max(0, record.attempts - 1), outcome_unknown=outcome_unknown, in_flight_until=None)


def release(record: StatusRecord, *, now: datetime, due: datetime, reason: Failure | None = None) -> StatusRecord:
    """Undoes a claim whose Graph call was never sent; a delayed copy comes back at ``due``.
    ``reason`` says why it waits (the recipient budget), shown as the request's ``lastError``."""
    return _enter(
        Move.RELEASE,
        record,
        now,
        attempts=record.attempts - 1,
        outcome_unknown=False,
        in_flight_until=None,
        next_attempt_at=due,
        delayed_copy_due=due,
        **(reason.fields() if reason else {}),
    )


def confirm_present(record: StatusRecord, *, now: datetime) -> StatusRecord:
    return _enter(Move.CONFIRM_PRESENT, record, now, outcome_unknown=False, in_flight_until=None)


def back_off(
    record: StatusRecord, *, now: datetime, due: datetime, failure: Failure, outcome_unknown: bool
) -> StatusRecord:
    """Throttled: a delayed copy is on the queue and comes back at ``due``."""
    return _enter(
        Move.BACK_OFF,
        record,
        now,
        throttled_since=record.throttled_since or now,
        throttle_count=record.throttle_count + 1,
        outcome_unknown=outcome_unknown,
        in_flight_until=None,
        next_attempt_at=due,
        delayed_copy_due=due,
        **failure.fields(),
    )


def retry_later(
    record: StatusRecord, *, now: datetime, retry_in: float, failure: Failure, outcome_unknown: bool
) -> StatusRecord:
    """A transient failure: the host delivers the same message again after ``retry_in``."""
    return _enter(
        Move.RETRY_LATER,
        record,
        now,
        outcome_unknown=outcome_unknown,
        in_flight_until=None,
        next_attempt_at=now + timedelta(seconds=retry_in),
        delayed_copy_due=None,
        **failure.fields(),
    )


_SETTLED: dict[str, Any] = {
    "in_flight_until": None,
    "outcome_unknown": False,
    "next_attempt_at": None,
    "delayed_copy_due": None,
}


def complete(record: StatusRecord, *, now: datetime, resolution: str) -> StatusRecord:
    return _enter(Move.COMPLETE, record, now, resolution=resolution, **_SETTLED)


def fail(record: StatusRecord, *, now: datetime, failure: Failure, resolution: str | None = None) -> StatusRecord:
    return _enter(Move.FAIL, record, now, resolution=resolution, **_SETTLED, **failure.fields())


def abort(record: StatusRecord, *, now: datetime, by: str) -> StatusRecord:
    """Final without a Graph call. Written with the ETag of a record read with no call in flight and
    no unknown outcome, so a concurrent ``claim`` makes exactly one of the two writes fail."""
    return _enter(
        Move.ABORT,
        record,
        now,
        resolution=f"aborted by {by} before it was sent to Graph",
        error_code=None,
        error_message=None,
        **_SETTLED,
    )


def retry(record: StatusRecord, *, now: datetime, by: str) -> StatusRecord:
    """Back to ``queued`` for one more attempt. When the last attempt's outcome was unknown the doubt
    is kept (``outcome_unknown``), so the worker reads the event before any new cancel."""
    from .steps import MAYBE_SENT

    return _enter(
        Move.RETRY,
        record,
        now,
        outcome_unknown=record.resolution == MAYBE_SENT,
        in_flight_until=None,
        next_attempt_at=None,
        delayed_copy_due=None,
        throttled_since=None,
        throttle_count=0,
        resolution=f"retried by {by} after {record.error_code}",
    )


_OWNER_FAILURE = ("error_code", "error_message", "graph_status", "graph_code", "graph_request_id", "graph_date")


def follow(record: StatusRecord, owner: StatusRecord, *, now: datetime) -> StatusRecord:
    """Ends with the outcome of the request that holds the meeting: cancelled when it cancelled the
    meeting, failed with its failure when Graph showed the meeting cannot be cancelled."""
    if owner.status == Status.CANCELLED:
        resolution = f"request {owner.id} cancelled this meeting ({owner.resolution or 'cancelled'})"
        return _enter(Move.FOLLOW, record, now, follows=owner.id, resolution=resolution, **_SETTLED)
    failure = {name: getattr(owner, name) for name in _OWNER_FAILURE}
    resolution = f"request {owner.id} found this meeting cannot be cancelled"
    return _enter(Move.FAIL, record, now, follows=owner.id, resolution=resolution, **_SETTLED, **failure)


def diagram() -> str:
    """The map as a Mermaid state diagram, one line per (origin, move, target)."""
    lines = ["stateDiagram-v2"]
    order = [None, *Status]
    for move, (origins, target) in MOVES.items():
        for origin in sorted(origins, key=order.index):
            source = "[*]" if origin is None else str(origin)
            lines.append(f"    {source} --> {target or origin}: {move}")
    for status in Status:
        if status.final:
            lines.append(f"    {status} --> [*]")
    return "\n".join(lines)
