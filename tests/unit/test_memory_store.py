"""The in-memory store keeps the store contract (the Table store keeps it in tests/integration)."""

from __future__ import annotations

import pytest

from meeting_cancel.memory_store import InMemoryRecordStore
from meeting_cancel.record_store import RecordStore
from tests.store_contract import StoreContract


class TestInMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> RecordStore:
        return InMemoryRecordStore()
