"""The in-memory store keeps the store contract (the Table store keeps it in tests/integration)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from meeting_cancel import lifecycle
from meeting_cancel.memory_store import InMemoryRecordStore
from meeting_cancel.models import QueuedCancelRequest
from meeting_cancel.record_store import RecordStore
from meeting_cancel.records import StatusRecord
from meeting_cancel.request_index import IndexedStore
from tests.store_contract import StoreContract


class TestInMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> RecordStore:
        return InMemoryRecordStore()


class TestIndexedInMemoryStore(StoreContract):
    """With the listing index beside it, the store keeps the same contract (batches read by index)."""

    @pytest.fixture
    def store(self) -> RecordStore:
        return IndexedStore(InMemoryRecordStore())


def test_batch_status_reads_the_batchs_index_rows_never_the_stores_scan() -> None:
    """``StatusStore.by_batch`` is a filtered table scan; with the index it is never called."""

    class NoScans(InMemoryRecordStore):
        def by_batch(self, batch_id: str) -> list[StatusRecord]:
            raise AssertionError("a table scan")

    store = IndexedStore(NoScans())
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for n in range(3):
        request = QueuedCancelRequest(id=f"child-{n}", organizer="adele.vance@contoso.com", eventId=f"AAMk{n}=")
        store.insert(lifecycle.admit(f"child-{n}", request, source="batch", now=now, batch_id="b-1"))
    store.insert(
        lifecycle.admit(
            "single",
            QueuedCancelRequest(id="single", organizer="adele.vance@contoso.com", eventId="AAMk="),
            source="http",
            now=now,
        )
    )

    assert sorted(r.id for r in store.by_batch("b-1")) == ["child-0", "child-1", "child-2"]
