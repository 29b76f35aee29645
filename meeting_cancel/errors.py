"""Errors of the meeting-cancel service, and every other exception its code raises on purpose.

The domain's own errors derive from ``MeetingCancelError``; the adapters map them to HTTP
problems or to queue outcomes, so callers branch on the type, never on the message. The other
roots are signals with one reader each, listed here so the whole tree is in one place::

    MeetingCancelError                      (this module)
    ├── ConfigurationError          a setting is missing or malformed (names the setting)
    ├── StorageUnavailable          queue or table storage could not be reached; retry later
    │                               (``storage.storage_errors`` is the one translation from the SDK)
    ├── ConcurrentUpdate            a status record changed since it was read (ETag): read, decide again
    ├── IllegalMove                 a lifecycle move the transition map forbids (a bug, never stored)
    ├── IdentityUnavailable         no token from the managed identity endpoint; retry later
    └── GraphError                  Microsoft Graph answered something other than success
        ├── GraphPermanentError     retrying cannot help (organizer rule, bad id, no mailbox…)
        └── GraphTransientError     retry later; ``outcome_unknown`` when the call may have applied
            └── GraphThrottled      429 (or 503 with Retry-After): honour ``retry_after``

    Problem                         (problems.py) an RFC 9457 answer for the HTTP caller; the
                                    adapter renders it (``cancel_function.answers_problems``)
    RetryLater                      (deliveries.py) raised to the queue host: deliver it again
    UnsupportedBinding              (local_runner/host.py) the local host cannot serve a binding the
                                    app declares; start-up stops
    pydantic.ValidationError        (third party) read by ``parsing.describe_errors``, never escapes

Context is keyword-only so that a raise site always says what each value is.
"""

from __future__ import annotations

from dataclasses import dataclass


class MeetingCancelError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigurationError(MeetingCancelError):
    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class StorageUnavailable(MeetingCancelError):
    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(f"storage unavailable during {operation}: {message}")
        self.operation = operation


class ConcurrentUpdate(MeetingCancelError):
    """Someone else changed the record since it was read; read it again and decide again."""

    def __init__(self, message: str = "the record changed since it was read", *, record_id: str) -> None:
        super().__init__(f"{record_id}: {message}")
        self.record_id = record_id


class IllegalMove(MeetingCancelError):
    """A status change the lifecycle's transition map does not allow."""

    def __init__(self, message: str, *, record_id: str, move: str) -> None:
        super().__init__(f"{record_id}: {message}")
        self.record_id = record_id
        self.move = move


class IdentityUnavailable(MeetingCancelError):
    def __init__(self, message: str, *, scope: str) -> None:
        super().__init__(f"no token for {scope} from the managed identity: {message}")
        self.scope = scope


@dataclass(frozen=True)
class GraphAnswer:
    """What Graph said about a failed call, kept for the status record and the log."""

    status: int | None
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None
    date: str | None = None


class GraphError(MeetingCancelError):
    def __init__(self, reason: str, *, code: str, answer: GraphAnswer) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.answer = answer


class GraphPermanentError(GraphError):
    """Graph refused in a way no retry can change."""


class GraphTransientError(GraphError):
    def __init__(
        self,
        reason: str,
        *,
        code: str,
        answer: GraphAnswer,
        outcome_unknown: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason, code=code, answer=answer)
        self.outcome_unknown = outcome_unknown
        self.retry_after = retry_after


class GraphThrottled(GraphTransientError):
    """Graph asked us to slow down; the request was not applied unless ``outcome_unknown``."""
