"""What the sandbox holds: mailboxes, events, the calls it received, the notices attendees would
have got, and the faults and limits a test arranged. In memory only."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def rest_id(seed: str) -> str:
    """A stable id in Graph's REST alphabet, ending in '=' like real ones often do."""
    digest = hashlib.sha256(seed.encode()).digest() + hashlib.sha256(seed[::-1].encode()).digest()
    return "AAMkAG" + base64.urlsafe_b64encode(digest[:52]).decode()


@dataclass
class Fault:
    """One rule: the next ``times`` calls that match get ``action`` instead of the normal answer.

    Actions: ``status`` (answer with that status, Graph error ``code`` and optional
    ``retry_after``), ``reset_after_apply`` (do the work, then drop the connection) and
    ``slow_after_apply`` (do the work, then answer after ``delay`` seconds), ``hook_after_apply``
    (do the work, then run ``hook``, for a test to break something at exactly that moment) and
    ``raw`` (answer ``status`` with ``body`` as text/html, as a proxy in front of Graph may).
    """

    action: str
    times: int = 1
    operation: str = "cancel"
    status: int = 500
    code: str = "InternalServerError"
    message: str | None = None  # Graph's message; "Injected fault <status>." when not given
    retry_after: float | None = None
    delay: float = 0.0
    mailbox: str | None = None
    hook: Callable[[], None] | None = None
    body: bytes = b""


@dataclass
class Limits:
    """Graph's throttling and Exchange's sending limit, per mailbox.

    ``concurrent_per_mailbox``: Outlook's "4 concurrent requests" per app and mailbox (Graph's
    throttling-limits.md, "Outlook service limits"); the 5th gets 429 ApplicationThrottled
    "Application is over its MailboxConcurrency limit." (as users report it, e.g. Microsoft Q&A
    734143 and 1660054). ``per_mailbox_per_window`` scales the 10,000 requests per 10 minutes down.
    ``recipients_per_day``: Exchange Online's recipient rate limit (10,000 recipients in any 24
    hours per mailbox, "Exchange Online limits", sending limits); notices past it bounce while the
    meeting still leaves the calendar (Graph answered 202 long before).
    """

    concurrent_per_mailbox: int | None = 4
    per_mailbox_per_window: int | None = None
    window_seconds: float = 1.0
    retry_after: float = 1.0
    latency_seconds: tuple[float, float] = (0.0, 0.0)
    recipients_per_day: int = 10_000


@dataclass
class Mailbox:
    upn: str
    id: str
    display_name: str
    has_mailbox: bool = True
    time_zone: str = "UTC"  # the mailbox's zone: where its all-day events begin and end


@dataclass
class SandboxState:
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    # Deleted Items: cancelled singles and series, under the new REST id the move gave them
    deleted: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    # recipients each mailbox has sent to, with when: Exchange's rolling 24 hours
    sent: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    # users report list calls without originalStart, or with it null (graph-docs#4353): a test can
    # make the sandbox answer so
    omit_original_start: bool = False
    outbox: list[dict[str, Any]] = field(default_factory=list)
    bounced: list[dict[str, Any]] = field(default_factory=list)  # notices past the recipient limit
    calls: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    tokens: dict[str, float] = field(default_factory=dict)
    token_requests: int = 0
    identity_down_until: float = 0.0
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # the most calls a mailbox ever had at once counting the one arriving, refused or not: what the
    # app asked of Graph, which ``in_flight`` (capped by the refusal) cannot show
    peak_asked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recent: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.RLock = field(default_factory=threading.RLock)
