"""The Table Storage store keeps the store contract on Azurite, as the in-memory one does."""

from __future__ import annotations

import pytest

from meeting_cancel.config import Settings
from meeting_cancel.record_store import RecordStore
from meeting_cancel.request_index import IndexedStore
from meeting_cancel.status_store import StatusStore
from tests.store_contract import StoreContract


class TestTableStore(StoreContract):
    @pytest.fixture
    def store(self, app_settings: dict[str, str]) -> RecordStore:
        table = StatusStore(Settings.from_environ())
        table.ensure_exists()
        return table


class TestIndexedTableStore(StoreContract):
    """The store the service uses: the Table store with the listing index beside it."""

    @pytest.fixture
    def store(self, app_settings: dict[str, str]) -> RecordStore:
        table = IndexedStore(StatusStore(Settings.from_environ()))
        table.ensure_exists()
        return table
