"""Status records in Table Storage: the single source of truth for each request's state.

Updates are conditional on the ETag, so two workers holding the same request cannot both believe
they own its next Graph call. The comment text is never stored here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
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
from .storage import table_client

ROW_KEY = "request"


class Status(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    RETRYING = "retrying"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (Status.CANCELLED, Status.FAILED)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StatusRecord:
    id: str
    status: Status
    organizer: str
    event_id: str
    source: str
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    has_comment: bool = False
    body_hash: str | None = None
    submitted_by: str | None = None
    authorized_by: str | None = None
    attempts: int = 0
    in_flight_until: datetime | None = None
    outcome_unknown: bool = False
    throttled_since: datetime | None = None
    throttle_count: int = 0
    next_attempt_at: datetime | None = None
    delayed_copy_due: datetime | None = None
    resolution: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    graph_status: int | None = None
    graph_code: str | None = None
    graph_request_id: str | None = None
    graph_date: str | None = None
    etag: str | None = field(default=None, compare=False)

    def evolve(self, **changes: Any) -> StatusRecord:
        return replace(self, updated_at=utcnow(), **changes)

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": self.id, "RowKey": ROW_KEY}
        for name, value in asdict(self).items():
            if name in ("id", "etag") or value is None:
                continue
            entity[name] = str(value) if isinstance(value, Status) else value
        return entity

    @classmethod
    def from_entity(cls, entity: Any) -> StatusRecord:
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in entity.items() if name in known}
        values["status"] = Status(values["status"])
        for name in (
            "created_at",
            "updated_at",
            "in_flight_until",
            "throttled_since",
            "next_attempt_at",
            "delayed_copy_due",
        ):
            if isinstance(values.get(name), datetime):
                values[name] = values[name].astimezone(UTC)
        etag = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
        return cls(id=entity["PartitionKey"], etag=etag, **values)


class ConcurrentUpdate(Exception):
    """Someone else changed the record since it was read; read it again and decide again."""


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

    def delete(self, request_id: str) -> None:
        try:
            self._table.delete_entity(request_id, ROW_KEY)
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="delete status") from error
