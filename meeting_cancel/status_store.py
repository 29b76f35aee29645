"""Status records in Table Storage: the single source of truth for each request's state.

Updates are conditional on the ETag, so two workers holding the same request cannot both believe
they own its next Graph call. The comment text is never stored here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from .config import Settings
from .errors import StorageUnavailable
from .records import ROW_KEY, ConcurrentUpdate, StatusRecord
from .storage import table_client


class StatusStore:
    def __init__(self, settings: Settings) -> None:
        self._table: TableClient = table_client(settings.storage, settings.table_name)

    def ensure_exists(self) -> None:
        try:
            self._table.create_table()
        except ResourceExistsError:
            pass
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="create table") from error

    def insert(self, record: StatusRecord) -> StatusRecord | None:
        """Stores a new record; None when one with the same id exists already."""
        try:
            metadata = self._table.create_entity(record.to_entity())
        except ResourceExistsError:
            return None
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="write status") from error
        return replace(record, etag=metadata.get("etag"))

    def get(self, request_id: str) -> StatusRecord | None:
        try:
            entity = self._table.get_entity(request_id, ROW_KEY)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="read status") from error
        return StatusRecord.from_entity(entity)

    def replace(self, record: StatusRecord) -> StatusRecord:
        """Writes the record if nobody changed it since it was read (its ETag still matches)."""
        try:
            metadata = self._table.update_entity(
                record.to_entity(),
                mode=UpdateMode.REPLACE,
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as error:
            raise ConcurrentUpdate(record.id) from error
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="update status") from error
        return replace(record, etag=metadata.get("etag"))

    def by_batch(self, batch_id: str) -> list[StatusRecord]:
        """The requests of one batch (a filtered scan: batches are read rarely and are small)."""
        try:
            entities = self._table.query_entities("batch_id eq @batch", parameters={"batch": batch_id})
            return [StatusRecord.from_entity(e) for e in entities if e["RowKey"] == ROW_KEY]
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="read batch") from error

    def get_entity(self, partition: str, row: str) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(partition, row))
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="read") from error

    def put_entity(self, entity: dict[str, Any]) -> None:
        try:
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="write") from error

    def delete(self, request_id: str) -> None:
        try:
            self._table.delete_entity(request_id, ROW_KEY)
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="delete status") from error
