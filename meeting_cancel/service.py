"""The composition root: one set of clients per process, built on first use.

Functions share a process, so sharing the credential, the HTTP pool and the storage clients means a
token is fetched once per lifetime and connections are reused across invocations. The Azure SDKs
are imported here, on first use, so the host indexes the functions without loading them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import TYPE_CHECKING

from .concurrency import AdaptiveLimiter, MailboxLimit
from .config import Settings
from .records import utcnow
from .retry_policy import RetryPolicy

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from .graph import GraphClient
    from .meeting_links import MeetingLinks
    from .recipient_budget import RecipientBudget
    from .record_store import RecordStore
    from .work_queue import WorkQueue


@dataclass
class Service:
    """The clients one process shares, and the clock and randomness the worker reads (replaceable)."""

    settings: Settings
    store: RecordStore
    queue: WorkQueue
    graph: GraphClient
    limiter: MailboxLimit
    meetings: MeetingLinks
    budget: RecipientBudget
    coordination: TableClient | None = None
    clock: Callable[[], datetime] = utcnow
    random: Random = field(default_factory=Random)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.settings)

    @classmethod
    def build(cls, settings: Settings) -> Service:
        from .graph import GraphClient
        from .mailbox_slots import MailboxSlots
        from .meeting_links import MeetingLinks
        from .recipient_budget import RecipientBudget
        from .status_store import StatusStore
        from .storage import table_client
        from .work_queue import WorkQueue

        coordination = table_client(settings.storage, coordination_table(settings))
        slots = MailboxSlots(
            coordination, slots=settings.graph_max_concurrency, lease_seconds=slot_lease_seconds(settings)
        )
        return cls(
            settings=settings,
            store=StatusStore(settings),
            queue=WorkQueue(settings),
            graph=GraphClient(settings),
            limiter=MailboxLimit(AdaptiveLimiter(maximum=settings.graph_max_concurrency), slots),
            meetings=MeetingLinks(coordination),
            budget=RecipientBudget(coordination, limit=settings.mailbox_recipients_per_day),
            coordination=coordination,
        )

    def ensure_storage(self) -> None:
        import contextlib

        from azure.core.exceptions import ResourceExistsError

        from .storage import storage_errors

        self.store.ensure_exists()
        self.queue.ensure_exists()
        if self.coordination is not None:
            with storage_errors("create table"), contextlib.suppress(ResourceExistsError):
                self.coordination.create_table()


# under one slot: the read before the cancel and the cancel, each possibly twice (a 401 refreshes
# the token once)
SLOT_CALLS = 4
SLOT_MARGIN_SECONDS = 5.0


def coordination_table(settings: Settings) -> str:
    """The table beside the status table that holds the mailbox slots, the meeting rows and the
    recipient budget, kept apart so reading requests never meets them (``STATUS_TABLE_NAME`` +
    ``coord``)."""
    return settings.table_name[:58] + "coord"


def slot_lease_seconds(settings: Settings) -> float:
    """How long a mailbox slot is held at most: the Graph calls it covers, each up to the timeout,
    and a margin. A slot is given back as soon as the call returns; this bounds how long a dead
    instance's slot stays taken."""
    return SLOT_CALLS * settings.graph_timeout_seconds + SLOT_MARGIN_SECONDS


_lock = threading.Lock()
_current: Service | None = None
_storage_ready = False


def current() -> Service:
    """The process's service; storage containers are created once, when first reachable."""
    global _current, _storage_ready
    with _lock:
        if _current is None:
            _current = Service.build(Settings.from_environ())
        if not _storage_ready:
            _current.ensure_storage()
            _storage_ready = True
        return _current


def readiness() -> dict[str, str]:
    """Reachability of storage and of the managed identity, each "ok" or "unavailable"."""
    from .errors import IdentityUnavailable, MeetingCancelError, StorageUnavailable

    checks: dict[str, str] = {}
    try:
        app = current()
        app.store.get("readiness-probe")
        checks["storage"] = "ok"
    except (StorageUnavailable, MeetingCancelError):
        checks["storage"] = "unavailable"
        return {**checks, "identity": "unknown"}
    try:
        app.graph.prepare_token()
        checks["identity"] = "ok"
    except IdentityUnavailable:
        checks["identity"] = "unavailable"
    return checks


def reset() -> None:
    """Forgets the process's service, so the next call reads the settings again (tests, reloads)."""
    global _current, _storage_ready
    with _lock:
        _current = None
        _storage_ready = False
