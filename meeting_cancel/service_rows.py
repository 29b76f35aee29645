"""Rows of the status table that are not requests: the sweep's hand-over rows and the service's
own secret. Their partition keys start with ``~``, which no tracking id can (``models.TRACKING_ID``
starts with a letter or digit), so they never meet a request's partition, and ``~`` sorts after
every letter and digit, so a range of them is read without touching a request.

* ``~unqueued~<yyyymmddThhmm>`` / request id: a request whose queue write failed or lost its
  answer, with its message, written only on that path. One partition per minute, so the sweep
  reads every due minute with one range query on PartitionKey and never scans requests: the
  table's one clustered index sorts by PartitionKey, then RowKey ("Designing a scalable
  partitioning strategy for Azure Table storage"), and a query bounded on PartitionKey reads only
  that range ("Design for querying", learn.microsoft.com/azure/storage/tables/
  table-storage-design-for-query; a filter without PartitionKey is the table scan it warns of).
  A minute's partition takes writes only while the queue is failing (a partition's scale target
  is 2,000 entities a second). The row is deleted once the sweep has queued the
  message; it holds the comment only until then, as the queue message would.
* ``~service`` / ``idempotency``: the random secret that makes tracking ids of keyed requests
  unguessable (``idempotency``). Created once, never rotated: deleting it would give every
  Idempotency-Key in use a new id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

UNQUEUED_PREFIX = "~unqueued~"
SERVICE_PARTITION = "~service"
_MINUTE = "%Y%m%dT%H%M"


def unqueued_partition(moment: datetime) -> str:
    """The minute bucket a hand-over row noted at ``moment`` lives in."""
    return UNQUEUED_PREFIX + moment.astimezone(UTC).strftime(_MINUTE)


@dataclass(frozen=True)
class UnqueuedEntry:
    """A request whose message may be missing from the queue, and that message's text."""

    request_id: str
    message: str
    noted_at: datetime

    @property
    def partition(self) -> str:
        return unqueued_partition(self.noted_at)
