"""What travels with a lifecycle move without being one: the Graph calls and the read's facts
(``noted``), and the undoing of a claim whose delivery sent nothing (``unclaimed``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from meeting_cancel import graph_journal, lifecycle
from meeting_cancel.failures import Failure
from meeting_cancel.graph_journal import GraphCall
from meeting_cancel.models import CancelRequest
from meeting_cancel.occurrences import EventFacts
from meeting_cancel.records import Status, StatusRecord

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def claimed() -> StatusRecord:
    request = CancelRequest(organizer="adele.vance@contoso.com", eventId="AAMkOCC=")
    record = lifecycle.accept("r1", request, source="http", now=NOW)
    return lifecycle.claim(record, now=NOW, lease_seconds=30)


def test_calls_and_facts_travel_with_the_next_write() -> None:
    calls = [GraphCall(op, f"guid-{op}", f"rid-{op}", 200, NOW) for op in ("read", "cancel")]
    facts = EventFacts("AAMkOCC=", "occurrence", True, False, 4, series_master_id="AAMkM=", start="2026-12-08T10:00:00")

    record = graph_journal.noted(claimed(), calls, facts)

    assert [c["client-request-id"] for c in json.loads(record.graph_calls or "")] == ["guid-read", "guid-cancel"]
    assert (record.recipients, record.event_kind, record.series_master_id) == (4, "occurrence", "AAMkM=")
    assert record.occurrence_start == "2026-12-08T10:00:00"
    assert record.status == Status.PROCESSING


def test_only_the_last_calls_are_kept() -> None:
    record = claimed()
    for n in range(20):
        record = graph_journal.noted(record, [GraphCall("read", f"g{n}", None, None, NOW)])
    kept = json.loads(record.graph_calls or "")
    assert [c["client-request-id"] for c in kept] == [f"g{n}" for n in range(8, 20)]


def test_a_claim_whose_delivery_sent_nothing_is_undone() -> None:
    record = lifecycle.unclaimed(claimed(), outcome_unknown=False)
    assert (record.attempts, record.outcome_unknown, record.in_flight_until) == (0, False, None)
    failed = lifecycle.fail(record, now=NOW, failure=Failure("notOrganizer", "not the organizer"))
    assert (failed.status, failed.attempts) == (Status.FAILED, 0)
