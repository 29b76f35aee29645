"""What a failed Graph or identity call leads to, and an error nobody planned for: one pure
decision each, as dramatiq's retries middleware keeps its policy apart from the actor. Back off
with a delayed copy (throttling), let the host deliver again (other transient errors), settle
(the error shows an earlier attempt cancelled the meeting) or give up (permanent, or the last
delivery). A function of its arguments: the lifecycle tests cover it without storage or Graph."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .errors import GraphError, GraphThrottled, GraphTransientError, IdentityUnavailable
from .failures import Failure
from .models import CancelRequest
from .records import StatusRecord
from .retry_policy import RetryPolicy
from .steps import GONE_AFTER_ATTEMPT, MAYBE_SENT, belongs_to


@dataclass(frozen=True)
class BackOff:
    """Throttled: put a delayed copy on the queue (``delay`` plus jitter) and record it."""

    delay: float
    failure: Failure
    outcome_unknown: bool
    reason: str


@dataclass(frozen=True)
class HostRetry:
    """Record the failure and raise, so the host delivers the message again."""

    failure: Failure
    outcome_unknown: bool
    retry_in: float


@dataclass(frozen=True)
class Settle:
    """The error shows that an earlier attempt already cancelled the meeting."""

    resolution: str


@dataclass(frozen=True)
class GiveUp:
    """Record the failure as final. ``poison``: this was the last delivery of a transient failure,
    so the message is handed back to the host, which moves it to poison."""

    failure: Failure
    resolution: str | None = None
    poison: bool = False


ErrorStep = BackOff | HostRetry | Settle | GiveUp


def outcome_unknown_after(record: StatusRecord, error: GraphTransientError | None, *, cancel_sent: bool) -> bool:
    """Whether an attempt may have applied: only the cancel call itself can clear that doubt."""
    if cancel_sent and error is not None:
        return error.outcome_unknown
    return record.outcome_unknown


def throttle_delay(record: StatusRecord, error: GraphThrottled, policy: RetryPolicy) -> float:
    """Graph's Retry-After when it gave one, else the policy's exponential backoff."""
    return error.retry_after if error.retry_after is not None else policy.backoff(record.throttle_count + 1)


def after_error(
    record: StatusRecord,
    error: GraphError | IdentityUnavailable,
    *,
    now: datetime,
    cancel_sent: bool,
    dequeue_count: int,
    policy: RetryPolicy,
) -> ErrorStep:
    if isinstance(error, GraphThrottled):
        delay = throttle_delay(record, error, policy)
        waited = (now - (record.throttled_since or now)).total_seconds()
        if waited + delay > policy.throttle_max_wait_seconds:
            return GiveUp(Failure.of(error, message=f"Graph kept throttling the request for {waited:.0f} s; gave up"))
        unknown = outcome_unknown_after(record, error, cancel_sent=cancel_sent)
        return BackOff(delay, Failure.of(error), unknown, f"throttled by Graph ({error.answer.status})")
    if isinstance(error, GraphTransientError):
        failure = Failure.of(error)
        unknown = outcome_unknown_after(record, error, cancel_sent=cancel_sent)
    elif isinstance(error, IdentityUnavailable):
        failure = Failure("identityUnavailable", str(error))
        unknown = outcome_unknown_after(record, None, cancel_sent=cancel_sent)
    else:  # permanent: no retry can change Graph's answer
        if cancel_sent and error.code == "eventNotFound" and record.attempts > 1:
            return Settle(GONE_AFTER_ATTEMPT)
        return GiveUp(Failure.of(error))
    if policy.last_delivery(dequeue_count):
        gave_up = Failure(failure.code, f"{failure.message} (gave up after {dequeue_count} deliveries)", failure.graph)
        return GiveUp(gave_up, MAYBE_SENT if unknown else None, poison=True)
    return HostRetry(failure, unknown, policy.host_retry_seconds)


# ----- an error nobody planned for
UNEXPECTED = "internalError"


def after_unexpected(
    record: StatusRecord | None,
    request: CancelRequest,
    error: BaseException,
    *,
    now: datetime,
    claimed_here: bool,
    dequeue_count: int,
    policy: RetryPolicy,
) -> GiveUp | None:
    """What an error the code does not handle leads to. Before the last delivery: nothing, the
    host delivers the message again. On the last one the message is about to leave for poison, so
    the request is recorded ``failed`` with a code first; an accepted id never stays pending.
    Left alone: a record already final, one of another request, and one whose lease another
    delivery holds (it is calling Graph and records its own outcome)."""
    if not policy.last_delivery(dequeue_count) or record is None or record.status.final:
        return None
    if not belongs_to(record, request):
        return None
    if record.in_flight_until and record.in_flight_until > now and not claimed_here:
        return None
    failure = Failure(
        UNEXPECTED,
        f"an unexpected error ({type(error).__name__}) on the last of {dequeue_count} deliveries; "
        "the message was moved to the poison queue",
    )
    return GiveUp(failure, MAYBE_SENT if record.outcome_unknown else None, poison=True)
