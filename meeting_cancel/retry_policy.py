"""One retry policy for the worker, after dramatiq's retries middleware: the backoff is a pure
function of the attempt, the jitter takes its randomness as an argument, and the limits come from
the settings (host.json's maxDequeueCount and visibilityTimeout, ``THROTTLE_MAX_WAIT_SECONDS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from .config import Settings

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
JITTER_MAX_SECONDS = 5.0
JITTER_SHARE = 0.2
JITTER_FLOOR_SECONDS = 0.5


@dataclass(frozen=True)
class RetryPolicy:
    max_deliveries: int = 5
    host_retry_seconds: float = 0.0
    throttle_max_wait_seconds: float = 24 * 3600.0
    base_seconds: float = BACKOFF_BASE_SECONDS
    max_seconds: float = BACKOFF_MAX_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_deliveries=settings.queue_host.max_dequeue_count,
            host_retry_seconds=settings.queue_host.visibility_timeout_seconds,
            throttle_max_wait_seconds=settings.throttle_max_wait_seconds,
        )

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` when Graph gave no Retry-After: 2, 4, 8 …
        up to five minutes."""
        return float(min(self.max_seconds, self.base_seconds * 2 ** max(0, attempt - 1)))

    def last_delivery(self, dequeue_count: int) -> bool:
        """Whether the host moves the message to poison if this delivery fails too."""
        return dequeue_count >= self.max_deliveries

    @staticmethod
    def jittered(delay: float, random: Random) -> float:
        """``delay`` plus up to a fifth of it (at most 5 s, at least 0.5 s), so copies put back at
        the same moment do not all come back at once."""
        return delay + random.uniform(0.0, min(JITTER_MAX_SECONDS, JITTER_SHARE * delay) + JITTER_FLOOR_SECONDS)
