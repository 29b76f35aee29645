"""The Graph calls made for one request, with both sides' ids: the GUID this service sent as
``client-request-id`` and Graph's ``request-id`` (Graph's best practices: log both; quote the
request-id to Microsoft support). The worker opens a ``journal`` per delivery; the Graph client
notes each call in the open one, and the status shows them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime


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
