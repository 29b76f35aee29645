"""Graph's per-mailbox concurrency limit, held across every instance of the app.

Outlook allows 4 concurrent requests per app and mailbox, counted across all of the app's
instances, and answers 429 beyond them (Graph's "Microsoft Graph service-specific throttling
limits", Outlook service). Azure Functions scales out, so a per-process limiter cannot keep that
promise: two instances each holding 4 slots make 8. Each mailbox therefore gets ``slots`` rows in
a table; holding a slot means having written your holder id and an expiry into a row whose
previous lease had expired, with an ETag-conditional write so two instances can never both win
the same row. A dead instance frees its slots when their lease expires.

Cost: each process caches the rows' ETags, so a slot taken and given back by the same instance is
two conditional writes; a stale cache costs one partition read. Mailboxes are keyed by a hash of the
lower-cased address, so no address is stored here.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .storage import storage_errors

FREE = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SlotLease:
    """One held slot: give it back with ``MailboxSlots.release``."""

    mailbox_key: str
    row: str
    holder: str
    etag: str


@dataclass
class _Row:
    etag: str
    expires_at: datetime
    holder: str


@dataclass
class MailboxSlots:
    table: TableClient
    slots: int = 4
    lease_seconds: float = 60.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    chooser: random.Random = field(default_factory=random.Random)
    _known: dict[str, dict[str, _Row]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _freed: threading.Condition = field(default_factory=threading.Condition)

    def try_acquire(self, mailbox: str) -> SlotLease | None:
        """A slot for the mailbox, or None when all are held by live leases (here or elsewhere)."""
        key = mailbox_key(mailbox)
        for refreshed in (False, True):
            rows = self._rows(key, refresh=refreshed)
            for row in self.chooser.sample(range(self.slots), self.slots):
                name = f"slot{row}"
                lease = self._take(key, name, rows.get(name))
                if lease is not None:
                    return lease
        return None

    def acquire(self, mailbox: str, *, max_wait: float) -> SlotLease | None:
        """Polls for a slot for up to ``max_wait`` seconds (short jittered waits); None if none freed.
        A slot given back in this process wakes its waiters at once; other instances' releases are
        seen at the next poll."""
        deadline = time.monotonic() + max_wait
        pause = 0.05
        while True:
            lease = self.try_acquire(mailbox)
            if lease is not None or time.monotonic() >= deadline:
                return lease
            wait = min(pause * (0.5 + self.chooser.random()), max(0.0, deadline - time.monotonic()))
            with self._freed:
                self._freed.wait(wait)
            pause = min(pause * 2, 0.4)

    def release(self, lease: SlotLease) -> None:
        """Frees the slot now; if the lease expired and another holder took the row, leaves it alone."""
        entity = {"PartitionKey": lease.mailbox_key, "RowKey": lease.row, "holder": "", "expires_at": FREE}
        try:
            with translated("release mailbox slot"):
                metadata = self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=lease.etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            self._forget(lease.mailbox_key)
            return
        self._remember(lease.mailbox_key, lease.row, _Row(str(metadata["etag"]), FREE, ""))
        with self._freed:
            self._freed.notify_all()

    def _take(self, key: str, row: str, known: _Row | None) -> SlotLease | None:
        now = self.clock()
        if known is not None and known.expires_at > now:
            return None
        holder = uuid.uuid4().hex
        expires_at = now + timedelta(seconds=self.lease_seconds)
        entity: dict[str, Any] = {"PartitionKey": key, "RowKey": row, "holder": holder, "expires_at": expires_at}
        try:
            with translated("take mailbox slot"):
                if known is None:
                    metadata = self.table.create_entity(entity)
                else:
                    metadata = self.table.update_entity(
                        entity, mode=UpdateMode.REPLACE, etag=known.etag, match_condition=MatchConditions.IfNotModified
                    )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            self._forget(key)
            return None
        etag = str(metadata["etag"])
        self._remember(key, row, _Row(etag, expires_at, holder))
        return SlotLease(key, row, holder, etag)

    def _rows(self, key: str, *, refresh: bool) -> dict[str, _Row]:
        with self._lock:
            cached = self._known.get(key)
        if cached is not None and not refresh:
            return dict(cached)
        with translated("read mailbox slots"):
            entities = list(self.table.query_entities("PartitionKey eq @key", parameters={"key": key}))
        rows = {
            str(e["RowKey"]): _Row(str(e.metadata["etag"]), _as_utc(e["expires_at"]), str(e.get("holder", "")))
            for e in entities
        }
        with self._lock:
            self._known[key] = rows
        return dict(rows)

    def _remember(self, key: str, row: str, value: _Row) -> None:
        with self._lock:
            self._known.setdefault(key, {})[row] = value

    def _forget(self, key: str) -> None:
        with self._lock:
            self._known.pop(key, None)

    def held(self, mailbox: str) -> int:
        """How many live leases the mailbox has now, read from storage (operators and tests)."""
        now = self.clock()
        return sum(1 for row in self._rows(mailbox_key(mailbox), refresh=True).values() if row.expires_at > now)


def translated(operation: str) -> AbstractContextManager[None]:
    """Storage failures as ``StorageUnavailable``; the outcomes the caller handles pass through."""
    return storage_errors(operation, passing=(ResourceExistsError, ResourceModifiedError, ResourceNotFoundError))


def mailbox_key(mailbox: str) -> str:
    return "mailbox-" + hashlib.sha256(mailbox.strip().lower().encode()).hexdigest()[:40]


def _as_utc(value: Any) -> datetime:
    return value.astimezone(UTC) if isinstance(value, datetime) else FREE
