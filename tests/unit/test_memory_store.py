"""The in-memory store keeps the store contract (the Table store keeps it in tests/integration)."""

from __future__ import annotations

import pytest

from meeting_cancel.memory_store import InMemoryRecordStore
from meeting_cancel.record_store import RecordStore
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
