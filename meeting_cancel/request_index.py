"""Index rows for listing, batch status and retention, so no read ever scans the status table.

A status record lives at ``PartitionKey=<id>, RowKey="request"``: found by id in one point read,
but a question such as "my requests of last week, newest first" would have to scan millions of
rows. Each request therefore also has a few small index rows in the same table, in partitions
whose keys start with ``ix|`` (no tracking id can: ``|`` is not a tracking-id character):

=====================================  ===================  ======================================
partition                              row key              read by
=====================================  ===================  ======================================
``ix|by|<hash of submitter>|<YYYYMM>`` ``<newest>|<id>``    listing of a signed-in caller's own
``ix|org|<hash of organizer>|<YYYYMM>`` ``<newest>|<id>``   listing filtered by organizer
``ix|status|<class>|<YYYYMM>``         ``<newest>|<id>``    listing by status, or all (the four
                                                            classes merged); retention
``ix|batch|<batch id>``                ``<id>``             batch status and batch abort
``ix|batches|<YYYYMM>``                ``<batch id>``       retention of batch records
=====================================  ===================  ======================================

``<YYYYMM>`` is the month the request was created (UTC) and ``<newest>`` the creation time in
milliseconds subtracted from 10^13, zero-padded: row keys sort newest first, so a page is one
range read from where the last page stopped (``RowKey gt <last>``), one partition per month.
A partition holds one view of one month; the service keeps a partition's rows sorted, so a range
read seeks instead of scanning, whatever the table's size. New requests' writes spread over the
organizers' partitions and go to the current month's ``pending`` partition (a partition serves
about 2,000 entities a second: learn.microsoft.com/azure/storage/tables/scalability-targets).
Callers who may read everything (a function key; the queue, which is no caller) get no submitter
rows: they never list "their own".

Intake writes a new request's rows and its record at once (one round trip, not one per row; a
keyed replay's rows that describe no stored record are removed again); the worker writes a queue
request's rows right after its record, so a duplicate delivery writes none. If a row cannot be
written the record is removed again and the write fails as a whole, so intake still answers
"nothing happened" and a record is never without its rows. (A fresh queue request holds its
meeting's row one storage call before its record exists; ``steps.OWNER_RECORD_GRACE_SECONDS``
covers that moment.)

``<class>`` is ``pending`` for queued, processing and retrying (a record moves between those on
every attempt; the index follows only the moves that cross classes: accept, a final move, retry),
else the final status. Rows are written before the record changes and the old class's row is
removed after, so a failure in between leaves a row too many, never one too few: readers check
the record itself (a row whose record is gone or in another class is skipped; retention removes it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from . import telemetry
from .batch_models import BatchRecord
from .errors import StorageUnavailable
from .record_store import RecordStore
from .records import Status, StatusRecord
from .service_rows import UnqueuedEntry

log = logging.getLogger(__name__)
PREFIX = "ix|"
NEWEST = 10**13
PENDING_CLASS = "pending"
READERS_OF_ALL = frozenset({"functionKey", "queue"})  # submitters who never list only their own
STATUS_CLASSES = (PENDING_CLASS, Status.CANCELLED.value, Status.FAILED.value, Status.ABORTED.value)


def digest(value: str) -> str:
    """A short stable hash, so no address appears in a key (and keys stay short)."""
    return hashlib.sha256(value.lower().encode()).hexdigest()[:16]


def month(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m")


def newest_first(moment: datetime) -> int:
    return NEWEST - int(moment.timestamp() * 1000)


def row_key(record: StatusRecord) -> str:
    return f"{newest_first(record.created_at):013d}|{record.id}"


def status_class(status: Status) -> str:
    return status.value if status.final else PENDING_CLASS


def submitter_partition(submitted_by: str, period: str) -> str:
    return f"{PREFIX}by|{digest(submitted_by)}|{period}"


def organizer_partition(organizer: str, period: str) -> str:
    return f"{PREFIX}org|{digest(organizer)}|{period}"


def status_partition(klass: str, period: str) -> str:
    return f"{PREFIX}status|{klass}|{period}"


def batch_partition(batch_id: str) -> str:
    return f"{PREFIX}batch|{batch_id}"


def batches_partition(period: str) -> str:
    return f"{PREFIX}batches|{period}"


def _row(partition: str, row: str, record: StatusRecord) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": row, "request_id": record.id, "created_at": record.created_at}


def view_rows(record: StatusRecord) -> list[dict[str, Any]]:
    """The rows that never change while the record lives (submitter, organizer, batch)."""
    period, key = month(record.created_at), row_key(record)
    rows = []
    if record.submitted_by and record.submitted_by not in READERS_OF_ALL:
        rows.append(_row(submitter_partition(record.submitted_by, period), key, record))
    if record.organizer:
        rows.append(_row(organizer_partition(record.organizer, period), key, record))
    if record.batch_id:
        rows.append(_row(batch_partition(record.batch_id), record.id, record))
    return rows


def class_row(record: StatusRecord, klass: str) -> dict[str, Any]:
    return _row(status_partition(klass, month(record.created_at)), row_key(record), record)


def keys_of(record: StatusRecord) -> list[tuple[str, str]]:
    """Every index row a record can have."""
    rows = view_rows(record) + [class_row(record, klass) for klass in STATUS_CLASSES]
    return [(row["PartitionKey"], row["RowKey"]) for row in rows]


def matches(row: dict[str, Any], record: StatusRecord | None) -> bool:
    """Whether an index row still describes the record: the same creation (not a stale row left by
    a replayed insert) and, for a status-class row, the record's class now (not a row left by a
    final write that lost, or by a class move whose old row could not be removed)."""
    if record is None or row["RowKey"] != row_key(record):
        return False
    partition = str(row["PartitionKey"])
    if partition.startswith(f"{PREFIX}status|"):
        return partition == status_partition(status_class(record.status), month(record.created_at))
    return True


class IndexedStore(RecordStore):
    """A ``RecordStore`` that keeps the index rows beside the records it stores."""

    def __init__(self, inner: RecordStore) -> None:
        self.inner = inner
        # Index writes go out together, so a request pays one more round trip, not one per row.
        self._writers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="index")

    def ensure_exists(self) -> None:
        self.inner.ensure_exists()

    def insert(self, record: StatusRecord) -> StatusRecord | None:
        """Intake's insert (``accepted``: a caller waits for the answer) sends the rows with the
        record, one round trip for all. The worker's (a queue request, accepted or claimed as it is
        stored) meets an existing record on every duplicate delivery, so its rows follow the record
        only once it was stored: a duplicate costs no row writes."""
        rows = [*view_rows(record), class_row(record, status_class(record.status))]
        if record.status != Status.ACCEPTED:
            stored = self.inner.insert(record)
            if stored is not None:
                self._write_rows(stored, rows, [])
            return stored
        writes = [self._writers.submit(self.inner.put_row, row) for row in rows]
        stored = self.inner.insert(record)
        if stored is not None:
            self._write_rows(stored, rows, writes)
            return stored
        self._settle_writes(writes)  # a replay: the rows just written may describe a record not stored
        existing = self.inner.get(record.id)
        if existing is None or row_key(existing) != row_key(record):
            self._forget_rows([(r["PartitionKey"], r["RowKey"]) for r in rows if r["RowKey"] != record.id])
        return None

    def _write_rows(self, stored: StatusRecord, rows: list[dict[str, Any]], writes: list[Future[None]]) -> None:
        """Never a record without its rows: if one cannot be written the record goes, and the insert
        fails as a whole (intake answers that nothing was queued)."""
        try:
            self._settle_writes(writes or [self._writers.submit(self.inner.put_row, row) for row in rows])
        except StorageUnavailable:
            self.inner.delete(stored.id)
            raise
        if stored.status.final:
            _count_outcome(stored)

    @staticmethod
    def _settle_writes(writes: list[Future[None]]) -> None:
        for write in writes:
            write.result()

    def get(self, request_id: str) -> StatusRecord | None:
        return self.inner.get(request_id)

    def replace(self, record: StatusRecord) -> StatusRecord:
        before = record.moved_from
        if before is None or status_class(before) == status_class(record.status):
            return self.inner.replace(record)
        new_row = self._writers.submit(self.inner.put_row, class_row(record, status_class(record.status)))
        try:  # the new class row and the record at once: if the record write loses, the row is stale
            stored = self.inner.replace(record)
        except Exception:
            with contextlib.suppress(StorageUnavailable):
                new_row.result()
            raise
        old = class_row(record, status_class(before))
        try:
            new_row.result()
        except StorageUnavailable as error:
            # The record moved; its new class row is missing. The old row stays: retention, reading
            # it, finds the record in another class and writes the missing row.
            log.warning("request %s: its %s index row could not be written: %s", record.id, record.status, error)
        else:
            self._forget_rows([(old["PartitionKey"], old["RowKey"])])
        if stored.status.final:
            _count_outcome(stored)
        return stored

    def delete(self, request_id: str) -> None:
        record = self.inner.get(request_id)
        self.inner.delete(request_id)
        if record is not None:
            self._forget_rows(keys_of(record))

    def by_batch(self, batch_id: str) -> list[StatusRecord]:
        """The batch's index rows, then one point read per child: never a table scan."""
        children = []
        for row in self.inner.rows(batch_partition(batch_id), batch_partition(batch_id), limit=100_000):
            child = self.inner.get(str(row["RowKey"]))
            if child is not None and child.batch_id == batch_id:
                children.append(child)
        return children

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        return self.inner.get_batch(batch_id)

    def put_batch(self, batch: BatchRecord) -> None:
        partition = batches_partition(month(batch.created_at))
        self.inner.put_row({"PartitionKey": partition, "RowKey": batch.id, "created_at": batch.created_at})
        self.inner.put_batch(batch)

    def delete_batch(self, batch_id: str) -> None:
        self.inner.delete_batch(batch_id)

    def service_secret(self, name: str, new: Callable[[], str]) -> str:
        return self.inner.service_secret(name, new)

    def put_unqueued(self, entry: UnqueuedEntry) -> None:
        self.inner.put_unqueued(entry)

    def unqueued_before(self, moment: datetime, limit: int) -> list[UnqueuedEntry]:
        return self.inner.unqueued_before(moment, limit)

    def remove_unqueued(self, entry: UnqueuedEntry) -> None:
        self.inner.remove_unqueued(entry)

    def put_row(self, entity: dict[str, Any]) -> None:
        self.inner.put_row(entity)

    def delete_row(self, partition: str, row: str) -> None:
        self.inner.delete_row(partition, row)

    def rows(
        self, partition_from: str, partition_to: str, *, after: str = "", before: str = "~", limit: int
    ) -> list[dict[str, Any]]:
        return self.inner.rows(partition_from, partition_to, after=after, before=before, limit=limit)

    def _forget_rows(self, keys: list[tuple[str, str]]) -> None:
        """Best effort: a row left behind is skipped by readers and removed by retention."""
        for partition, row in keys:
            try:
                self.inner.delete_row(partition, row)
            except StorageUnavailable as error:
                log.warning("index row %s/%s left behind: %s", partition, row, error)


def _count_outcome(record: StatusRecord) -> None:
    """The one place a request's final outcome is counted: its conditional write into a final status
    succeeded, which happens once per request (and again only after a retry)."""
    code = record.error_code if record.status == Status.FAILED and record.error_code else record.status.value
    telemetry.record_outcome(record.status.value, code)


def months_between(start: datetime, end: datetime) -> Iterator[str]:
    """The months from ``end`` back to ``start``, newest first."""
    year, number = end.year, end.month
    while (year, number) >= (start.year, start.month):
        yield f"{year:04d}{number:02d}"
        year, number = (year, number - 1) if number > 1 else (year - 1, 12)
