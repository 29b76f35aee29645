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
    retry_after: float | None = None
    delay: float = 0.0
    mailbox: str | None = None
    hook: Callable[[], None] | None = None
    body: bytes = b""


@dataclass
class Limits:
    """Graph's throttling, scaled down: concurrent calls and calls per window, per mailbox."""

    concurrent_per_mailbox: int | None = None
    per_mailbox_per_window: int | None = None
    window_seconds: float = 1.0
    retry_after: float = 1.0
    latency_seconds: tuple[float, float] = (0.0, 0.0)


@dataclass
class Mailbox:
    upn: str
    id: str
    display_name: str
    has_mailbox: bool = True


@dataclass
class SandboxState:
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    outbox: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    tokens: dict[str, float] = field(default_factory=dict)
    token_requests: int = 0
    identity_down_until: float = 0.0
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recent: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.RLock = field(default_factory=threading.RLock)
