"""An in-memory ``RecordStore`` that honours ETags like Table Storage: for the fast test tier and
for trying the lifecycle without Azurite. One process only; nothing survives it."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from .batch_models import BatchRecord
from .errors import ConcurrentUpdate
from .record_store import RecordStore
from .records import StatusRecord
from .service_rows import UnqueuedEntry, unqueued_partition


class InMemoryRecordStore(RecordStore):
    def __init__(self) -> None:
        self._records: dict[str, StatusRecord] = {}
        self._batches: dict[str, BatchRecord] = {}
        self._secrets: dict[str, str] = {}
        self._unqueued: dict[tuple[str, str], UnqueuedEntry] = {}
        self._versions = itertools.count(1)
        self._lock = threading.Lock()

    def _stamped(self, record: StatusRecord) -> StatusRecord:
        return replace(record, etag=f'W/"{next(self._versions)}"')

    def ensure_exists(self) -> None:
        return None

    def insert(self, record: StatusRecord) -> StatusRecord | None:
        with self._lock:
            if record.id in self._records:
                return None
            stored = self._records[record.id] = self._stamped(record)
            return stored

    def get(self, request_id: str) -> StatusRecord | None:
        with self._lock:
            return self._records.get(request_id)

    def replace(self, record: StatusRecord) -> StatusRecord:
        with self._lock:
            current = self._records.get(record.id)
            if current is None or current.etag != record.etag:
                raise ConcurrentUpdate(record_id=record.id)
            stored = self._records[record.id] = self._stamped(record)
            return stored

    def delete(self, request_id: str) -> None:
        with self._lock:
            self._records.pop(request_id, None)

    def by_batch(self, batch_id: str) -> list[StatusRecord]:
        with self._lock:
            return [r for r in self._records.values() if r.batch_id == batch_id]

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            return self._batches.get(batch_id)

    def put_batch(self, batch: BatchRecord) -> None:
        with self._lock:
            self._batches[batch.id] = batch

    def service_secret(self, name: str, new: Callable[[], str]) -> str:
        with self._lock:
            return self._secrets.setdefault(name, new())

    def put_unqueued(self, entry: UnqueuedEntry) -> None:
        with self._lock:
            self._unqueued[(entry.partition, entry.request_id)] = entry

    def unqueued_before(self, moment: datetime, limit: int) -> list[UnqueuedEntry]:
        bound = unqueued_partition(moment)
        with self._lock:
            due = sorted(key for key in self._unqueued if key[0] < bound)
            return [self._unqueued[key] for key in due[:limit]]

    def remove_unqueued(self, entry: UnqueuedEntry) -> None:
        with self._lock:
            self._unqueued.pop((entry.partition, entry.request_id), None)
