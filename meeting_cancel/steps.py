"""What the worker does next with a request: one pure decision per situation.

Like Powertools' idempotency handler, one switch over the record's status decides whether a
delivery completes at once (done, or a duplicate), comes back later (another delivery holds the
lease), fails, or goes on to resolve, verify or cancel; and what a request does about another
that holds its meeting. What an error leads to is decided in ``error_steps``. Everything here is
a function of its arguments (record, request, now, settings): a table of cases tests it without
storage or Graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import idempotency
from .config import Settings
from .failures import Failure
from .models import CancelRequest
from .records import Status, StatusRecord

SLOT_MAX_WAIT_SECONDS = 5.0
LEASE_MARGIN_SECONDS = 5.0
BUSY_RETRY_SECONDS = 5.0
EARLY_TOLERANCE_SECONDS = 2.0
# Verification shows the meeting left the calendar, not that the notices went out (Graph answers
# 202 before it sends them), so these say "verified gone", never "attendees notified".
GONE_AFTER_UNKNOWN = "verified gone: after an earlier attempt with an unknown outcome the event was no longer there"
GONE_AFTER_ATTEMPT = "verified gone: the event was no longer there after an earlier attempt"
CANCELLED_BY_GRAPH = "cancelled by Graph (202 Accepted; Graph sends the notices)"
MAYBE_SENT = "the last attempt's outcome is unknown: the cancel may have been sent"
FOLLOW_POLL_SECONDS = 2.0
FOLLOW_MAX_WAIT_SECONDS = 60.0
# A fresh queue request holds its meeting's row one storage call before its record exists (accept
# and claim are one insert), so a row naming a request with no record is young for a moment.
# Another request takes such a meeting over only once the row is older than OWNER_RECORD_GRACE;
# the holder goes on to Graph only if its record was stored within HOLD_TO_CLAIM_MAX of holding
# the row, so the two never both cancel (the gap leaves room for clock skew between instances).
OWNER_RECORD_GRACE_SECONDS = 120.0
HOLD_TO_CLAIM_MAX_SECONDS = 30.0
# Graph's answers that settle a meeting for every request naming it (``graph.PERMANENT_CODES``): a
# request that follows an owner which failed so shares the failure. Any other failure may pass
# (throttling, outages, access policies still propagating, the allow-list changed), so a later
# request takes the meeting over instead of being held back by it for good.
SETTLED_FAILURES = frozenset({"eventNotFound", "notOrganizer", "invalidEventId"})


# ----- the next step for a delivery
@dataclass(frozen=True)
class Conflict:
    """The message's id belongs to a record of another meeting: poison it, leave the record."""

    reason: str


@dataclass(frozen=True)
class Duplicate:
    """Nothing to do: complete the message."""

    reason: str


@dataclass(frozen=True)
class ComeBackLater:
    """Put a copy of the message back for ``delay`` seconds; the record is not touched."""

    delay: float
    reason: str


@dataclass(frozen=True)
class Refuse:
    failure: Failure


@dataclass(frozen=True)
class Follow:
    """Another request holds this meeting's cancellation: see how it is doing (``after_owner``)."""

    owner_id: str


@dataclass(frozen=True)
class Resolve:
    """Find the Graph id of a meeting named by iCalUId or by series and date."""


@dataclass(frozen=True)
class Verify:
    """An earlier attempt's outcome is unknown: look for the event before any new cancel, by its
    shape (``kind``, from the read before the cancel; None when that was not recorded):

    * a single meeting or series master moves to Deleted Items and its REST id changes, so a 404
      on the old id shows it gone (graph-docs-contrib#8137; outlook-immutable-id.md);
    * an occurrence leaves its master's ``instances`` while the master stays, so it is looked for
      there, around its start (``series_master_id``, ``occurrence_start``).
    """

    event_id: str
    kind: str | None = None
    series_master_id: str | None = None
    occurrence_start: str | None = None


@dataclass(frozen=True)
class Cancel:
    """Claim the request (recorded before Graph is called), take a mailbox slot, call cancel."""

    event_id: str
    lease_seconds: float


Step = Conflict | Duplicate | ComeBackLater | Refuse | Follow | Resolve | Verify | Cancel


CALLS_UNDER_CLAIM = 2  # the read before the cancel, and the cancel


def lease_seconds(settings: Settings) -> float:
    """How long other deliveries keep off: the wait for a mailbox slot, the calls, a margin."""
    return SLOT_MAX_WAIT_SECONDS + CALLS_UNDER_CLAIM * settings.graph_timeout_seconds + LEASE_MARGIN_SECONDS


_REQUEST_FIELDS = set(CancelRequest.model_fields)


def fingerprint(request: CancelRequest) -> str:
    """The request's fingerprint, as its record keeps it (``body_hash``): the fields of the request
    contract (``CancelRequest``), so the message's own additions (the tracking id, the attendee count
    a batch passes along) are not part of it; the organizer in lower case (userPrincipalNames are
    case-insensitive)."""
    document = request.model_dump(mode="json", include=_REQUEST_FIELDS)
    return idempotency.fingerprint({**document, "organizer": request.organizer.lower()})


def belongs_to(record: StatusRecord, request: CancelRequest) -> bool:
    """Whether a message is the record's own request: the same meeting and, where the record keeps
    a fingerprint, the same fields (comment included). Another writer's message that reuses the id
    with its own text is not the request, so its text never reaches the attendees."""
    same_meeting = (record.organizer.lower(), record.target or record.event_id) == (
        request.organizer.lower(),
        request.target,
    )
    if not same_meeting or record.body_hash is None:
        return same_meeting
    if record.body_hash == fingerprint(request):
        return True
    # Records written before the organizer was folded to lower case keep the fields as sent.
    return record.body_hash == idempotency.fingerprint(request.model_dump(mode="json", include=_REQUEST_FIELDS))


def next_step(record: StatusRecord, request: CancelRequest, now: datetime, settings: Settings) -> Step:
    if not belongs_to(record, request):
        return Conflict(f"the tracking id {record.id!r} already belongs to another request")
    if record.status.final:
        return Duplicate("duplicate delivery of a finished request; completing it")
    if record.in_flight_until and record.in_flight_until > now:
        return ComeBackLater(
            (record.in_flight_until - now).total_seconds() + BUSY_RETRY_SECONDS,
            "another delivery is calling Graph for this request",
        )
    if (
        record.status == Status.RETRYING
        and record.delayed_copy_due
        and record.delayed_copy_due - now > timedelta(seconds=EARLY_TOLERANCE_SECONDS)
    ):
        return Duplicate("early copy of a request waiting for its retry; completing it")
    if not settings.organizers.allows(record.organizer):
        return Refuse(Failure("organizerNotAllowed", settings.organizers.refusal(record.organizer)))
    if record.follows:
        return Follow(record.follows)
    if not record.event_id:
        return Resolve()
    if record.outcome_unknown or record.in_flight_until:
        return Verify(record.event_id, record.event_kind, record.series_master_id, record.occurrence_start)
    return Cancel(record.event_id, lease_seconds(settings))


# ----- when another request holds the meeting (``meeting_links``)
@dataclass(frozen=True)
class Share:
    """The owner's outcome settles the meeting: end with it, no Graph call of our own."""

    owner: StatusRecord


@dataclass(frozen=True)
class Wait:
    """The owner is still working on the meeting (or is about to store its record): link to it
    and look again in ``delay`` seconds."""

    owner_id: str
    delay: float


@dataclass(frozen=True)
class TakeOver:
    """The owner failed for a reason that may pass, or vanished: hold the meeting ourselves.
    ``doubt``: the owner may have cancelled it, so read the event before any cancel."""

    doubt: bool


OwnerStep = Share | Wait | TakeOver


def after_owner(
    owner_id: str, owner: StatusRecord | None, now: datetime, *, held_since: datetime | None = None
) -> OwnerStep:
    """What a request does about the request that holds its meeting. ``held_since``: when the
    meeting's row was last written (None: not read; a take-over goes through the row, which is
    read then and decided again)."""
    if owner is None:
        if held_since is not None and now - held_since < timedelta(seconds=OWNER_RECORD_GRACE_SECONDS):
            return Wait(owner_id, FOLLOW_POLL_SECONDS)  # its holder is storing its record
        return TakeOver(doubt=True)  # removed (retention, or intake undoing a request): its outcome is unknown
    if not owner.status.final:
        return Wait(owner.id, follow_delay(owner, now))
    if owner.status == Status.CANCELLED or owner.error_code in SETTLED_FAILURES:
        return Share(owner)
    maybe_sent = owner.resolution == MAYBE_SENT or (owner.status != Status.FAILED and owner.attempts > 0)
    return TakeOver(doubt=maybe_sent)


def follow_delay(owner: StatusRecord, now: datetime) -> float:
    """When a follower looks again: just after the owner's next attempt when it is backing off,
    and less often the longer the owner has not moved (2 s to 60 s), so a follower of a stalled
    owner costs a read a minute, not one every 2 s."""
    due = owner.next_attempt_at if owner.status == Status.RETRYING else None
    until_due = (due - now).total_seconds() + 1.0 if due and due > now else 0.0
    idle = (now - owner.updated_at).total_seconds() / 2
    return min(max(until_due, idle, FOLLOW_POLL_SECONDS), FOLLOW_MAX_WAIT_SECONDS)


def resolved(request: CancelRequest, found: list[str]) -> str | Failure:
    """The one Graph id a lookup must find, or why the request fails."""
    if request.iCalUId is not None:
        none = Failure("iCalUIdNotFound", "no event in the organizer's mailbox has this iCalUId")
        many_code = "iCalUIdAmbiguous"
    else:
        none = Failure(
            "occurrenceNotFound", f"the series has no occurrence on {request.occurrenceDate} in {request.timeZone}"
        )
        many_code = "occurrenceAmbiguous"
    if not found:
        return none
    if len(found) > 1:
        return Failure(many_code, f"{len(found)} events match; name the one to cancel by its eventId")
    return found[0]
