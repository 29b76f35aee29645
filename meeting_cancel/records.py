"""The status record of one cancellation request and its states (DESIGN 3.1).

A plain value: ``status_store`` persists it in Table Storage, the worker moves it through its
states. The comment text is never part of it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import CancelRequest

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
    target: str | None = None
    batch_id: str | None = None
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

    @classmethod
    def queued(cls, request_id: str, request: CancelRequest, *, source: str, **fields: Any) -> StatusRecord:
        """A new record for a request; meetings named by iCalUId or occurrence get their id later."""
        return cls(
            id=request_id,
            status=Status.QUEUED,
            organizer=request.organizer,
            event_id="" if request.needs_lookup else str(request.eventId),
            target=request.target,
            source=source,
            has_comment=request.comment is not None,
            **fields,
        )

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
