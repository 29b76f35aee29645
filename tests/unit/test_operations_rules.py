"""An operator's controls as pure rules: when abort is refused, what retry accepts, which delivery
is a redrive, how the index keys sort and follow a record, what the list accepts, and how telemetry
names things. The index is exercised through the in-memory store (the same rules as Table Storage)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from meeting_cancel import lifecycle, listing, operations, request_index, steps, telemetry
from meeting_cancel.callers import Caller
from meeting_cancel.deliveries import Delivery
from meeting_cancel.errors import StorageUnavailable
from meeting_cancel.failures import Failure
from meeting_cancel.memory_store import InMemoryRecordStore
from meeting_cancel.models import QueuedCancelRequest
from meeting_cancel.problems import Problem
from meeting_cancel.records import Status, StatusRecord

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ORGANIZER = "adele.vance@contoso.com"
REQUEST = QueuedCancelRequest(id="r-1", organizer=ORGANIZER, eventId="AAMkAGI2TG93AAA=")


def queued(request_id: str = "r-1", at: datetime = NOW, by: str = "functionKey") -> StatusRecord:
    return lifecycle.accept(request_id, REQUEST, source="http", now=at, submitted_by=by)


def failed(code: str, *, unknown: bool = False) -> StatusRecord:
    claimed = lifecycle.claim(queued(), now=NOW, lease_seconds=40)
    return lifecycle.fail(
        claimed, now=NOW, failure=Failure(code, "x"), resolution=steps.MAYBE_SENT if unknown else None
    )


# ----- abort
def test_abort_is_refused_while_a_call_may_be_in_flight_or_its_outcome_is_unknown() -> None:
    claimed = lifecycle.claim(queued(), now=NOW, lease_seconds=40)
    in_flight = operations.abort_refusal(claimed, NOW + timedelta(seconds=10))
    assert in_flight is not None
    assert (in_flight.status, in_flight.code, in_flight.retry_after) == (409, "inFlight", 31)
    lease_over = operations.abort_refusal(claimed, NOW + timedelta(minutes=5))
    assert lease_over is not None
    assert lease_over.code == "inFlight"  # the lease ended but the outcome is still unknown
    done = lifecycle.complete(claimed, now=NOW, resolution="cancelled by Graph")
    assert operations.abort_refusal(done, NOW) == Problem(
        409, "alreadyFinal", "Already final", "Request r-1 is already cancelled; nothing to abort."
    )
    assert operations.abort_refusal(queued(), NOW) is None
    verified_present = lifecycle.confirm_present(claimed, now=NOW)
    assert operations.abort_refusal(verified_present, NOW) is None


# ----- retry
@pytest.mark.parametrize("code", sorted(operations.RETRYABLE_CODES))
def test_passing_failures_may_be_retried(code: str) -> None:
    assert operations.retry_refusal(failed(code)) is None


@pytest.mark.parametrize("code", ["notOrganizer", "eventNotFound", "organizerNotAllowed", "idConflict"])
def test_permanent_failures_are_409_with_the_reason(code: str) -> None:
    refusal = operations.retry_refusal(failed(code))
    assert refusal is not None
    assert (refusal.status, refusal.code) == (409, "permanentFailure")
    assert code in refusal.detail


def test_only_failed_requests_are_retried() -> None:
    refusal = operations.retry_refusal(queued())
    assert refusal is not None
    assert (refusal.code, "still pending" in refusal.detail) == ("notFailed", True)


@pytest.mark.parametrize(
    "fields",
    [
        {"eventId": "AAMkAGI2TG93AAA="},
        {"iCalUId": "040000008200E00074C5B7101A82E008"},
        {"eventId": "AAMkSeries=", "occurrenceDate": "2026-12-08", "timeZone": "Europe/Berlin"},
    ],
)
def test_a_retried_message_names_the_meeting_as_the_request_did(fields: dict[str, str]) -> None:
    original = QueuedCancelRequest.model_validate({"id": "r-9", "organizer": ORGANIZER, **fields})
    record = lifecycle.accept("r-9", original, source="http", now=NOW)
    rebuilt = operations.request_of(record, "See you")
    assert steps.belongs_to(record, rebuilt)
    assert rebuilt.target == original.target
    assert rebuilt.comment == "See you"


# ----- redrive
def delivery(count: int, inserted: datetime | None) -> Delivery:
    return Delivery(body=b"{}", message_id="m", dequeue_count=count, inserted_at=inserted)


@pytest.mark.parametrize(
    ("record", "message", "redrive"),
    [
        (failed("graphUnavailable", unknown=True), delivery(1, NOW + timedelta(minutes=3)), True),
        (failed("throttled"), delivery(1, NOW.replace(microsecond=0)), True),  # the queue reports whole seconds
        (failed("graphUnavailable"), delivery(1, NOW - timedelta(seconds=2)), False),  # a copy sent before it failed
        # delivered again: the first delivery failed before it recorded the redrive
        (failed("graphUnavailable"), delivery(2, NOW + timedelta(minutes=3)), True),
        (failed("graphUnavailable"), delivery(1, None), False),
        (failed("eventNotFound"), delivery(1, NOW + timedelta(minutes=3)), False),  # permanent
        (queued(), delivery(1, NOW + timedelta(minutes=3)), False),
    ],
)
def test_a_redrive_is_a_delivery_inserted_after_a_passing_failure(
    record: StatusRecord, message: Delivery, redrive: bool
) -> None:
    assert operations.is_redrive(record, message) is redrive


# ----- the index
def test_row_keys_sort_newest_first_and_months_are_walked_backwards() -> None:
    older, newer = queued("a", NOW), queued("b", NOW + timedelta(milliseconds=1))
    assert request_index.row_key(newer) < request_index.row_key(older)
    months = list(request_index.months_between(datetime(2025, 11, 30, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)))
    assert months == ["202602", "202601", "202512", "202511"]


def test_the_index_follows_a_record_across_classes_and_never_names_an_address() -> None:
    store = request_index.IndexedStore(InMemoryRecordStore())
    record = store.insert(queued())
    assert record is not None
    month = request_index.month(NOW)
    pending = request_index.status_partition("pending", month)
    assert [r["request_id"] for r in store.rows(pending, pending, limit=10)] == ["r-1"]
    claimed = store.replace(lifecycle.claim(record, now=NOW, lease_seconds=40))
    assert store.rows(pending, pending, limit=10) != []  # processing is still pending
    store.replace(lifecycle.fail(claimed, now=NOW, failure=Failure("throttled", "x")))
    failed_rows = request_index.status_partition("failed", month)
    assert store.rows(pending, pending, limit=10) == []
    assert [r["request_id"] for r in store.rows(failed_rows, failed_rows, limit=10)] == ["r-1"]
    every_key = " ".join(p for p, _ in request_index.keys_of(record))
    assert ORGANIZER not in every_key
    store.delete("r-1")
    assert store.rows("ix|", "ix|~", limit=100) == []


def test_a_replayed_insert_leaves_no_second_row() -> None:
    store = request_index.IndexedStore(InMemoryRecordStore())
    store.insert(queued("r-1", NOW))
    assert store.insert(queued("r-1", NOW + timedelta(seconds=5))) is None
    pending = request_index.status_partition("pending", request_index.month(NOW))
    assert len(store.rows(pending, pending, limit=10)) == 1


# ----- the list's parameters
def test_the_list_defaults_to_the_retention_period_and_refuses_bad_parameters() -> None:
    query = listing.parse_query({}, now=NOW, retention_days=30)
    assert (query.end - query.start).days == 31
    assert query.top == listing.DEFAULT_TOP
    with pytest.raises(Problem) as raised:
        listing.parse_query({"from": "2026-12-02", "to": "2026-12-01", "top": "101"}, now=NOW, retention_days=30)
    assert {e["field"] for e in raised.value.errors} == {"from", "top"}
    assert not listing.may_read_all(Caller(kind="user", id="x"))
    assert listing.may_read_all(Caller(kind="user", id="x", roles=frozenset({"Cancellations.Read.All"})))


# ----- telemetry
def test_log_lines_about_a_request_say_which_in_their_text() -> None:
    line = logging.LogRecord("meeting_cancel.worker", logging.INFO, __file__, 1, "put back for %.1f s", (2.0,), None)
    line.request_id = "r-7"
    telemetry.RequestIdInText().filter(line)
    assert line.getMessage() == "request r-7: put back for 2.0 s"
    already = logging.LogRecord("x", logging.INFO, __file__, 1, "request %s retried", ("r-7",), None)
    already.request_id = "r-7"
    telemetry.RequestIdInText().filter(already)
    assert already.getMessage() == "request r-7 retried"


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", "/v1.0/users/adele.vance%40contoso.com/events/AAMk=/cancel", "cancel"),
        ("GET", "/v1.0/users/adele.vance%40contoso.com/events/AAMk=", "get"),
        ("GET", "/v1.0/users/adele.vance%40contoso.com/events/AAMk=/instances", "instances"),
        ("GET", "/v1.0/users/adele.vance%40contoso.com/calendarView", "calendarView"),
        ("GET", "/v1.0/users/adele.vance%40contoso.com", "user"),
    ],
)
def test_graph_operations_are_named_for_the_latency_metric(method: str, path: str, operation: str) -> None:
    assert telemetry.graph_operation(method, f"https://graph.microsoft.com{path}") == (operation, ORGANIZER)


def test_telemetry_is_off_without_a_connection_string_and_records_nothing() -> None:
    telemetry.reset()
    telemetry.record_outcome("cancelled", "cancelled")  # no provider: returns at once
    assert telemetry._state.tracer is None
    assert not telemetry._state.instruments
    assert replace(queued(), status=Status.ABORTED).status.final
    assert telemetry.current_traceparent(None).startswith("00-")
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert telemetry.current_traceparent(incoming.upper()) == incoming
    assert telemetry.current_traceparent("garbage") != "garbage"


def test_importing_the_app_loads_no_opentelemetry_it_is_configured_on_first_invocation() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    modules = [root / "function_app.py"]
    for package in ("meeting_cancel", "cancel_function", "queue_trigger", "retention_function"):
        modules += sorted((root / package).rglob("*.py"))
    for module in modules:
        for node in ast.parse(module.read_text(encoding="utf-8")).body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            heavy = [n for n in names if n.startswith(("opentelemetry", "azure.monitor"))]
            assert not heavy, f"{module.name} imports {heavy} at import time"


def test_the_trace_context_is_not_part_of_a_requests_fingerprint() -> None:
    traced = REQUEST.model_copy(update={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert steps.fingerprint(traced) == steps.fingerprint(REQUEST)
    assert steps.belongs_to(
        lifecycle.accept("r-1", REQUEST, source="queue", now=NOW, body_hash=steps.fingerprint(REQUEST)), traced
    )


def test_a_class_row_describes_a_record_only_in_the_records_class_now() -> None:
    """An abort that lost to a claim leaves an `aborted` row behind; when the request ends
    `cancelled` the listing of all requests merges the classes and must show it once."""
    record = queued()
    aborted_row = request_index.class_row(record, Status.ABORTED.value)
    cancelled = replace(record, status=Status.CANCELLED)
    assert not request_index.matches(aborted_row, cancelled)
    assert request_index.matches(request_index.class_row(record, Status.CANCELLED.value), cancelled)
    for row in request_index.view_rows(record):  # organizer and submitter rows hold whatever the class
        assert request_index.matches(row, cancelled)


def test_a_record_whose_new_class_row_failed_moves_and_keeps_its_old_row_for_retention() -> None:
    """The record's write succeeded, so the move is not reported as failed; the old class row stays
    so that retention, reading it, finds the record and writes the missing row."""

    class RowsFail(InMemoryRecordStore):
        failing = False

        def put_row(self, entity: dict[str, object]) -> None:
            if self.failing:
                raise StorageUnavailable("refused", operation="write index")
            super().put_row(entity)

    inner = RowsFail()
    store = request_index.IndexedStore(inner)
    record = store.insert(queued())
    assert record is not None
    inner.failing = True
    done = store.replace(lifecycle.complete(record, now=NOW, resolution="cancelled by Graph"))
    assert done.status == Status.CANCELLED
    pending = request_index.class_row(record, request_index.PENDING_CLASS)
    assert inner.rows(pending["PartitionKey"], pending["PartitionKey"], limit=10) != []
