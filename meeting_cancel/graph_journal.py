"""The Graph calls made for one request, with both sides' ids: the GUID this service sent as
``client-request-id`` and Graph's ``request-id`` (Graph's best practices: log both; quote the
request-id to Microsoft support). The worker opens a ``journal`` per delivery; the Graph client
notes each call in the open one, and the status shows them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .occurrences import EventFacts
    from .records import StatusRecord


@dataclass(frozen=True)
class GraphCall:
    operation: str
    client_request_id: str
    request_id: str | None
    status: int | None
    at: datetime


_journal: ContextVar[list[GraphCall] | None] = ContextVar("graph_journal", default=None)


@contextmanager
def journal() -> Iterator[list[GraphCall]]:
    """Collects the Graph calls made inside the block (in this thread or task)."""
    calls: list[GraphCall] = []
    token = _journal.set(calls)
    try:
        yield calls
    finally:
        _journal.reset(token)


def note(operation: str, client_request_id: str, request_id: str | None, status: int | None) -> None:
    calls = _journal.get()
    if calls is not None:
        calls.append(GraphCall(operation, client_request_id, request_id, status, datetime.now(UTC)))


def noted(
    record: StatusRecord, calls: list[GraphCall], facts: EventFacts | None = None, *, keep: int = 12
) -> StatusRecord:
    """What the worker learnt on the way, written with the next move: the request's Graph calls
    (the last ``keep``, both sides' ids) and what the read before the cancel found (recipients and
    the shape a verification needs). Not a move: it changes no status, like the ETag."""
    changes: dict[str, Any] = {}
    if calls:
        earlier = json.loads(record.graph_calls) if record.graph_calls else []
        added = [
            {
                "operation": call.operation,
                "status": call.status,
                "client-request-id": call.client_request_id,
                "request-id": call.request_id,
                "at": call.at.isoformat(),
            }
            for call in calls
        ]
        changes["graph_calls"] = json.dumps((earlier + added)[-keep:])
    if facts is not None:
        changes.update(
            recipients=facts.attendees,
            event_kind=facts.kind,
            series_master_id=facts.series_master_id,
            occurrence_start=facts.start if facts.is_occurrence else None,
        )
    return replace(record, **changes) if changes else record
