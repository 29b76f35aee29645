"""Retention: final requests are deleted ``STATUS_RETENTION_DAYS`` (default 30) after they became final.

Run by a timer-triggered function (``retention_function``). It reads the index rows of the final
status classes (``request_index``), month partition by month partition from the oldest up to the
month of the cutoff, so it never scans the table: for each row whose record is final and last
changed before the cutoff, the record and all its index rows go. A request's idempotency key is
its id (``idempotency.request_id_for``), so the key goes with the record: a replay of that key
afterwards is a new request. Pending requests are never deleted, however old. Rows left behind by
an interrupted write (their record gone, or in another class now) are removed on the way. A batch
record goes once it is older than the cutoff and none of its requests is left. A run stops after
``RUN_SECONDS`` and the next run goes on; rows are handled ``WORKERS`` at a time.

Queue messages live at most 7 days (the default time-to-live, also of the copies the host puts on
the poison queue), so the minimum retention of 8 days outlives every copy of a request's message:
no late copy finds its record gone and starts the request again.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import request_index as ix
from .records import Status

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
PAGE = 200
# A run stops here, well inside Flex Consumption's default functionTimeout of 30 minutes
# (MicrosoftDocs/azure-docs, includes/functions-timeout-duration.md).
RUN_SECONDS = 20 * 60.0
WORKERS = 16  # a page's rows handled at once: each deletion is a few sequential round trips
FINAL_CLASSES = (Status.CANCELLED.value, Status.FAILED.value, Status.ABORTED.value)


@dataclass
class Purged:
    requests: int = 0
    batches: int = 0
    stale_rows: int = 0
    rows_read: int = 0
    finished: bool = True


def cutoff(now: datetime, retention_days: int) -> datetime:
    return now - timedelta(days=retention_days)


def purge(service: Service, *, now: datetime, run_seconds: float = RUN_SECONDS) -> Purged:
    """One run, until everything due is gone or ``run_seconds`` have passed (the next run goes on).

    Month by month from the oldest, every class of that month before the next month, so no class
    waits behind another's backlog. Rows sort newest first, so each partition is read from the
    cutoff's key on: requests created after the cutoff are never read."""
    limit = cutoff(now, service.settings.status_retention_days)
    deadline = time.monotonic() + run_seconds
    start = f"{ix.newest_first(limit):013d}"
    purged = Purged()
    due = sorted(
        (partition[-6:], partition)
        for klass in (*FINAL_CLASSES, ix.PENDING_CLASS)  # pending rows: stale ones of requests now final
        for partition in _old_partitions(
            service, ix.status_partition(klass, ""), ix.status_partition(klass, ix.month(limit))
        )
    )
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="retention") as pool:
        for _, partition in due:
            if not _purge_partition(service, pool, partition, limit, start, purged, deadline):
                purged.finished = False
                break
    if purged.finished:
        _purge_batches(service, limit, purged)
    log.info(
        "retention: %d requests and %d batches older than %s deleted, %d stale index rows removed%s",
        purged.requests,
        purged.batches,
        limit.isoformat(),
        purged.stale_rows,
        "" if purged.finished else "; stopped for time, the next run goes on",
    )
    return purged


def _old_partitions(service: Service, lowest: str, highest: str) -> list[str]:
    """The month partitions from the oldest present up to ``highest`` (the first row found names it)."""
    first = service.store.rows(lowest, highest, limit=1)
    if not first:
        return []
    oldest = str(first[0]["PartitionKey"])
    prefix, start = oldest[:-6], oldest[-6:]
    end = highest[-6:]
    partitions = []
    year, number = int(start[:4]), int(start[4:])
    while f"{year:04d}{number:02d}" <= end:
        partitions.append(f"{prefix}{year:04d}{number:02d}")
        year, number = (year, number + 1) if number < 12 else (year + 1, 1)
    return partitions


def _purge_partition(
    service: Service,
    pool: ThreadPoolExecutor,
    partition: str,
    limit: datetime,
    after: str,
    purged: Purged,
    deadline: float,
) -> bool:
    """Whether the partition was read to its end before the deadline."""
    while time.monotonic() < deadline:
        rows = service.store.rows(partition, partition, after=after, limit=PAGE)
        for outcome in pool.map(lambda row: _purge_row(service, partition, limit, row), rows):
            purged.rows_read += 1
            purged.stale_rows += outcome == "stale"
            purged.requests += outcome == "deleted"
        if len(rows) < PAGE:
            return True
        after = str(rows[-1]["RowKey"])
    return False


def _purge_row(service: Service, partition: str, limit: datetime, row: dict[str, Any]) -> str:
    record = service.store.get(str(row["request_id"]))
    if record is None or not ix.matches(row, record):
        if record is not None and row["RowKey"] == ix.row_key(record):  # its class moved on
            service.store.put_row(ix.class_row(record, ix.status_class(record.status)))  # in case that row failed
        service.store.delete_row(partition, str(row["RowKey"]))
        return "stale"
    if not (record.status.final and record.updated_at < limit):
        return "kept"
    service.store.delete(record.id)
    log.info(
        "request %s deleted by retention (%s since %s)",
        record.id,
        record.status,
        record.updated_at.isoformat(),
        extra={"request_id": record.id},
    )
    return "deleted"


def _purge_batches(service: Service, limit: datetime, purged: Purged) -> None:
    for partition in _old_partitions(service, ix.batches_partition(""), ix.batches_partition(ix.month(limit))):
        for row in service.store.rows(partition, partition, limit=100_000):
            batch_id = str(row["RowKey"])
            batch = service.store.get_batch(batch_id)
            if batch is not None and batch.created_at >= limit:
                continue
            if service.store.rows(ix.batch_partition(batch_id), ix.batch_partition(batch_id), limit=1):
                continue  # some of its requests are still kept
            service.store.delete_batch(batch_id)
            service.store.delete_row(partition, batch_id)
            purged.batches += 1
