"""Limits on concurrent Graph calls, one per mailbox: a process's adaptive window in front of the
slots every instance shares.

Graph allows 4 concurrent requests per app and mailbox, counted across all of the app's instances,
and answers 429 beyond them; a throttled call still counts against the limit (Graph's "Microsoft
Graph service-specific throttling limits", Outlook service: microsoftgraph/microsoft-graph-docs-contrib
concepts/throttling-limits.md). So a call needs two things:

* a place in the process's AIMD window (``AdaptiveLimiter``): it halves on a 429 and pauses for
  the Retry-After, and grows by one after a window's worth of successes. Waiting here is free (no
  storage), so an instance's own callers queue in memory and only as many as the window allows go
  on to ask for a shared slot;
* one of the mailbox's slots shared by every instance (``mailbox_slots.MailboxSlots``, leases in
  Table Storage whose expiry covers the call, given back at once after it; a dead instance's slot
  frees when its lease expires).

A caller that would wait longer than ``max_wait`` gets a delay back instead, to put its message
back on the queue rather than hold a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import StorageUnavailable

if TYPE_CHECKING:
    from .mailbox_slots import MailboxSlots

log = logging.getLogger(__name__)
SHARED_BUSY_RETRY_SECONDS = 1.0


@dataclass
class _Window:
    limit: int
    in_use: int = 0
    successes: int = 0
    paused_until: float = 0.0


@dataclass
class AdaptiveLimiter:
    maximum: int = 4
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, _Window] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    @contextmanager
    def slot(self, key: str, *, max_wait: float = 5.0) -> Iterator[float]:
        """Yields 0.0 while holding a slot, or the seconds to come back later without one."""
        deadline = self.clock() + max_wait
        with self._changed:
            window = self._windows.setdefault(key.lower(), _Window(limit=self.maximum))
            while True:
                now = self.clock()
                if window.paused_until > now:
                    if window.paused_until > deadline:
                        delay = window.paused_until - now
                        break
                    self._changed.wait(window.paused_until - now)
                    continue
                if window.in_use < window.limit:
                    window.in_use += 1
                    delay = 0.0
                    break
                if now >= deadline:
                    delay = 1.0
                    break
                self._changed.wait(deadline - now)
        if delay:
            yield delay
            return
        try:
            yield 0.0
        finally:
            with self._changed:
                window.in_use -= 1
                self._changed.notify_all()

    def record_success(self, key: str) -> None:
        with self._changed:
            window = self._windows.setdefault(key.lower(), _Window(limit=self.maximum))
            window.successes += 1
            if window.successes >= window.limit and window.limit < self.maximum:
                window.limit += 1
                window.successes = 0
                self._changed.notify_all()

    def record_throttled(self, key: str, retry_after: float) -> None:
        with self._changed:
            window = self._windows.setdefault(key.lower(), _Window(limit=self.maximum))
            window.limit = max(1, window.limit // 2)
            window.successes = 0
            window.paused_until = max(window.paused_until, self.clock() + retry_after)

    def limit(self, key: str) -> int:
        with self._changed:
            window = self._windows.get(key.lower())
            return window.limit if window else self.maximum


@dataclass
class MailboxLimit:
    """The process's window in front of the shared slots, behind one ``slot()``."""

    local: AdaptiveLimiter
    shared: MailboxSlots | None = None  # None: one process alone (tests of the window itself)
    clock: Callable[[], float] = time.monotonic

    @contextmanager
    def slot(self, key: str, *, max_wait: float = 5.0) -> Iterator[float]:
        """Yields 0.0 while holding both, or the seconds to come back later without a slot."""
        deadline = self.clock() + max_wait
        with self.local.slot(key, max_wait=max_wait) as wait:
            if wait or self.shared is None:
                yield wait
                return
            lease = self.shared.acquire(key, max_wait=max(0.0, deadline - self.clock()))
            if lease is None:  # every instance's slots stayed busy: nothing was sent
                yield SHARED_BUSY_RETRY_SECONDS
                return
            try:
                yield 0.0
            finally:
                try:
                    self.shared.release(lease)
                except StorageUnavailable as error:  # the lease expires on its own
                    log.warning("could not give a mailbox slot back; it frees when its lease expires: %s", error)

    def record_success(self, key: str) -> None:
        self.local.record_success(key)

    def record_throttled(self, key: str, retry_after: float) -> None:
        self.local.record_throttled(key, retry_after)
