"""Adaptive limits on concurrent Graph calls, one per mailbox.

Graph allows 4 concurrent requests per app and mailbox and answers 429 beyond them; a throttled
call still counts against the limit. So each mailbox gets an AIMD window: it halves on a 429 and
pauses for the Retry-After, and grows by one after a window's worth of successes. A caller that
would wait longer than ``max_wait`` gets the delay back instead, to put its message back on the
queue rather than hold a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


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
