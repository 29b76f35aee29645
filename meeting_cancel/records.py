"""The status record of one cancellation request: a plain value and its Table Storage form.

``lifecycle`` creates records and moves them between statuses; ``status_store`` and
``memory_store`` persist them. The comment text is never part of a record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

ROW_KEY = "request"
_MOMENTS = ("created_at", "updated_at", "in_flight_until", "throttled_since", "next_attempt_at", "delayed_copy_due")


class Status(StrEnum):
    ACCEPTED = "accepted"  # recorded; its message is not yet known to be on the queue
    QUEUED = "queued"
    PROCESSING = "processing"
    RETRYING = "retrying"
    CANCELLED = "cancelled"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def final(self) -> bool:
        return self in FINAL

    @property
    def public(self) -> str:
        """The status callers see: ``accepted`` reads as ``queued``, because an accepted request's
        message is on the queue or in the sweep's hands (``sweep``); the difference matters only
        to the service, which re-sends the message of an accepted request when asked again."""
        return QUEUED_PUBLICLY if self is Status.ACCEPTED else self.value


QUEUED_PUBLICLY = "queued"
FINAL = frozenset({Status.CANCELLED, Status.FAILED, Status.ABORTED})
PENDING = frozenset(Status) - FINAL


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StatusRecord:
    """One request's state. Built only by ``lifecycle`` (new records and named transitions) and by
    ``from_entity`` (reading a stored one)."""

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
    follows: str | None = None  # another request for the same meeting, whose outcome this one shares
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
    graph_client_request_id: str | None = None
    # what the read before the cancel found: who gets the notice and the shape a verification needs
    recipients: int | None = None
    event_kind: str | None = None
    series_master_id: str | None = None
    occurrence_start: str | None = None
    graph_calls: str | None = None  # JSON: the request's last Graph calls, with both sides' ids
    etag: str | None = field(default=None, compare=False)
    # The status a move left (set by ``lifecycle``, never stored): lets the listing index follow a
    # record from pending to final and back without reading it first.
    moved_from: Status | None = field(default=None, compare=False)

    def values(self) -> dict[str, Any]:
        """The fields by name, as they are (all immutable): ``asdict`` would deep-copy each one,
        a measurable share of the CPU of every write."""
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": self.id, "RowKey": ROW_KEY}
        for name, value in self.values().items():
            if name in ("id", "etag", "moved_from") or value is None:
                continue
            entity[name] = str(value) if isinstance(value, Status) else value
        return entity

    def snapshot(self) -> dict[str, Any]:
        """The record as JSON values with its ETag: what intake puts in the queue message, so the
        worker can claim the request with one conditional write instead of reading it first."""
        values = {name: v.isoformat() if isinstance(v, datetime) else v for name, v in self.values().items()}
        return {name: value for name, value in values.items() if value is not None}

    @classmethod
    def from_snapshot(cls, values: dict[str, Any]) -> StatusRecord:
        """The record a ``snapshot`` describes; raises ``ValueError`` or ``TypeError`` for anything else."""
        known = {f.name: f for f in fields(cls)}
        if not isinstance(values.get("etag"), str) or set(values) - set(known):
            raise ValueError("not a status record snapshot")
        parsed = dict(values)
        parsed["status"] = Status(parsed["status"])
        for name in _MOMENTS:
            if name in parsed:
                parsed[name] = datetime.fromisoformat(parsed[name]).astimezone(UTC)
        record = cls(**parsed)
        if not isinstance(record.id, str) or not isinstance(record.attempts, int):
            raise ValueError("not a status record snapshot")
        return record

    @classmethod
    def from_entity(cls, entity: Any, *, etag: str | None = None) -> StatusRecord:
        known = {f.name for f in fields(cls)} - {"id", "etag", "moved_from"}
        values = {name: value for name, value in entity.items() if name in known}
        values["status"] = Status(values["status"])
        for name in _MOMENTS:
            if isinstance(values.get(name), datetime):
                values[name] = values[name].astimezone(UTC)
        if etag is None and hasattr(entity, "metadata"):
            etag = entity.metadata.get("etag")
        return cls(id=entity["PartitionKey"], etag=etag, **values)


_FIELD_NAMES = tuple(f.name for f in fields(StatusRecord))
