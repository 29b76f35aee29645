"""Status records in Table Storage: the single source of truth for each request's state.

Updates are conditional on the ETag, so two workers holding the same request cannot both believe
they own its next Graph call. The comment text is never stored here.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .batch_models import BatchRecord
from .config import Settings
from .errors import ConcurrentUpdate
from .record_store import RecordStore
from .records import ROW_KEY, StatusRecord
from .service_rows import SERVICE_PARTITION, UNQUEUED_PREFIX, UnqueuedEntry, unqueued_partition
from .storage import storage_errors, table_client

BATCH_ROW = "batch"


class StatusStore(RecordStore):
    def __init__(self, settings: Settings) -> None:
        self._table: TableClient = table_client(settings.storage, settings.table_name)

    def ensure_exists(self) -> None:
        with storage_errors("create table"), contextlib.suppress(ResourceExistsError):
            self._table.create_table()

    def insert(self, record: StatusRecord) -> StatusRecord | None:
        with storage_errors("write status"):
            try:
                metadata = self._table.create_entity(record.to_entity())
            except ResourceExistsError:
                return None
        return replace(record, etag=metadata.get("etag"))

    def get(self, request_id: str) -> StatusRecord | None:
        with storage_errors("read status"):
            try:
                entity = self._table.get_entity(request_id, ROW_KEY)
            except ResourceNotFoundError:
                return None
        return StatusRecord.from_entity(entity)

    def replace(self, record: StatusRecord) -> StatusRecord:
        with storage_errors("update status"):
            try:
                metadata = self._table.update_entity(
                    record.to_entity(),
                    mode=UpdateMode.REPLACE,
                    etag=record.etag,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError) as error:
                raise ConcurrentUpdate(record_id=record.id) from error
        return replace(record, etag=metadata.get("etag"))

    def delete(self, request_id: str) -> None:
        with storage_errors("delete status"):
            self._table.delete_entity(request_id, ROW_KEY)

    def by_batch(self, batch_id: str) -> list[StatusRecord]:
        """A filtered scan: batches are read rarely and are small."""
        with storage_errors("read batch"):
            entities = self._table.query_entities("batch_id eq @batch", parameters={"batch": batch_id})
            return [StatusRecord.from_entity(e) for e in entities if e["RowKey"] == ROW_KEY]

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with storage_errors("read batch"):
            try:
                entity = self._table.get_entity(batch_id, BATCH_ROW)
            except ResourceNotFoundError:
                return None
        return BatchRecord(id=batch_id, **{k: v for k, v in entity.items() if k in BatchRecord.model_fields})

    def put_batch(self, batch: BatchRecord) -> None:
        entity = {"PartitionKey": batch.id, "RowKey": BATCH_ROW, **batch.model_dump(exclude={"id"}, exclude_none=True)}
        with storage_errors("write batch"):
            self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def service_secret(self, name: str, new: Callable[[], str]) -> str:
        with storage_errors("read service secret"):
            with contextlib.suppress(ResourceNotFoundError):
                return str(self._table.get_entity(SERVICE_PARTITION, name)["value"])
            with contextlib.suppress(ResourceExistsError):  # two instances at once: the first one wins
                self._table.create_entity({"PartitionKey": SERVICE_PARTITION, "RowKey": name, "value": new()})
            return str(self._table.get_entity(SERVICE_PARTITION, name)["value"])

    def put_unqueued(self, entry: UnqueuedEntry) -> None:
        row = {
            "PartitionKey": entry.partition,
            "RowKey": entry.request_id,
            "message": entry.message,
            "noted_at": entry.noted_at,
        }
        with storage_errors("hand over to the sweep"):
            self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def unqueued_before(self, moment: datetime, limit: int) -> list[UnqueuedEntry]:
        """One range query on PartitionKey: only hand-over rows lie in it, never a request."""
        query = "PartitionKey ge @low and PartitionKey lt @high"
        bounds = {"low": UNQUEUED_PREFIX, "high": unqueued_partition(moment)}
        with storage_errors("read the sweep's rows"):
            rows = self._table.query_entities(query, parameters=bounds, results_per_page=min(limit, 1000))
            return [
                UnqueuedEntry(
                    request_id=row["RowKey"], message=row["message"], noted_at=row["noted_at"].astimezone(UTC)
                )
                for row in itertools.islice(rows, limit)
            ]

    def remove_unqueued(self, entry: UnqueuedEntry) -> None:
        with storage_errors("remove a sweep row"):
            self._table.delete_entity(entry.partition, entry.request_id)
