"""One contract for every ``RecordStore``: the in-memory store (tests/unit) and the Table Storage
store on Azurite (tests/integration) run the same cases, so the fast tier's store behaves as the
real one does where the lifecycle depends on it: ETags, inserts that never overwrite, batches."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from meeting_cancel import lifecycle
from meeting_cancel.batch_models import BatchRecord
from meeting_cancel.errors import ConcurrentUpdate, GraphAnswer, GraphPermanentError
from meeting_cancel.failures import Failure
from meeting_cancel.models import QueuedCancelRequest
from meeting_cancel.record_store import RecordStore
from meeting_cancel.records import Status
from meeting_cancel.service_rows import UnqueuedEntry

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
REQUEST = QueuedCancelRequest(organizer="adele.vance@contoso.com", eventId="AAMkAGI2TG93AAA=", comment="Closed.")


class StoreContract:
    """Subclasses provide a ``store`` fixture with an empty store."""

    def test_the_first_secret_stored_is_the_one_every_caller_reads(self, store: RecordStore) -> None:
        assert store.service_secret("idempotency", lambda: "first") == "first"
        assert store.service_secret("idempotency", lambda: "second") == "first"

    def test_hand_over_rows_are_read_by_minute_oldest_first_and_removed(self, store: RecordStore) -> None:
        rows = [
            UnqueuedEntry(request_id=f"r-{n}", message=f'{{"id": "r-{n}"}}', noted_at=NOW - timedelta(minutes=n))
            for n in (3, 1, 2, 0)
        ]
        for row in rows:
            store.put_unqueued(row)
        store.put_unqueued(rows[0])  # handing over twice is harmless
        store.insert(lifecycle.admit("r-9", REQUEST, source="http", now=NOW))

        due = store.unqueued_before(NOW, 10)  # the current minute is not due yet
        assert [r.request_id for r in due] == ["r-3", "r-2", "r-1"]
        assert due[0] == rows[0]
        assert [r.request_id for r in store.unqueued_before(NOW, 2)] == ["r-3", "r-2"]

        store.remove_unqueued(due[0])
        store.remove_unqueued(due[0])  # removing one that is gone is not an error
        assert [r.request_id for r in store.unqueued_before(NOW + timedelta(minutes=1), 10)] == ["r-2", "r-1", "r-0"]
        assert store.get("r-9") is not None

    def test_insert_then_get_returns_the_record_with_an_etag(self, store: RecordStore) -> None:
        stored = store.insert(lifecycle.accept("c-1", REQUEST, source="http", now=NOW, body_hash="h"))
        assert stored is not None
        assert stored.etag
        read = store.get("c-1")
        assert read == stored
        assert read is not None
        assert read.etag == stored.etag
        assert (read.status, read.body_hash, read.created_at) == (Status.QUEUED, "h", NOW)
        admitted = store.insert(lifecycle.admit("c-1a", REQUEST, source="http", now=NOW))
        assert admitted is not None
        assert store.get("c-1a").status == Status.ACCEPTED  # type: ignore[union-attr]

    def test_a_second_insert_with_the_same_id_changes_nothing(self, store: RecordStore) -> None:
        store.insert(lifecycle.accept("c-2", REQUEST, source="http", now=NOW, body_hash="first"))
        again = store.insert(lifecycle.accept("c-2", REQUEST, source="http", now=NOW, body_hash="second"))
        assert again is None
        assert store.get("c-2").body_hash == "first"  # type: ignore[union-attr]

    def test_replace_needs_the_etag_it_was_read_with(self, store: RecordStore) -> None:
        stored = store.insert(lifecycle.accept("c-3", REQUEST, source="queue", now=NOW))
        assert stored is not None
        claimed = store.replace(lifecycle.claim(stored, now=NOW, lease_seconds=40))
        assert claimed.etag != stored.etag
        with pytest.raises(ConcurrentUpdate):
            store.replace(lifecycle.fail(stored, now=NOW, failure=Failure("x", "stale")))
        assert store.get("c-3").status == Status.PROCESSING  # type: ignore[union-attr]

    def test_replace_of_a_deleted_record_is_a_concurrent_update(self, store: RecordStore) -> None:
        stored = store.insert(lifecycle.accept("c-4", REQUEST, source="http", now=NOW))
        assert stored is not None
        store.delete("c-4")
        assert store.get("c-4") is None
        with pytest.raises(ConcurrentUpdate):
            store.replace(lifecycle.claim(stored, now=NOW, lease_seconds=40))

    def test_a_missing_record_is_none(self, store: RecordStore) -> None:
        assert store.get("nothing-here") is None

    def test_batches_and_their_children(self, store: RecordStore) -> None:
        assert store.get_batch("b-1") is None
        for child in ("b-1-a", "b-1-b"):
            store.insert(lifecycle.accept(child, REQUEST, source="batch", now=NOW, batch_id="b-1"))
        store.insert(lifecycle.accept("other", REQUEST, source="batch", now=NOW, batch_id="b-2"))
        batch = BatchRecord(
            id="b-1", organizer=REQUEST.organizer, count=2, request_hash="h", submitted_by="functionKey", created_at=NOW
        )
        store.put_batch(batch)
        assert store.get_batch("b-1") == batch
        assert sorted(r.id for r in store.by_batch("b-1")) == ["b-1-a", "b-1-b"]

    def test_plain_rows_are_read_by_key_range_in_key_order(self, store: RecordStore) -> None:
        for partition, row in [("ix|a|202611", "2"), ("ix|a|202611", "1"), ("ix|a|202612", "1"), ("ix|b|202611", "1")]:
            store.put_row({"PartitionKey": partition, "RowKey": row, "request_id": f"{partition}/{row}"})
        one = store.rows("ix|a|202611", "ix|a|202611", limit=10)
        assert [r["RowKey"] for r in one] == ["1", "2"]
        assert [r["RowKey"] for r in store.rows("ix|a|202611", "ix|a|202611", after="1", limit=10)] == ["2"]
        assert [r["RowKey"] for r in store.rows("ix|a|202611", "ix|a|202611", before="2", limit=10)] == ["1"]
        span = store.rows("ix|a|", "ix|a|202612", limit=10)
        assert [(r["PartitionKey"], r["RowKey"]) for r in span] == [
            ("ix|a|202611", "1"),
            ("ix|a|202611", "2"),
            ("ix|a|202612", "1"),
        ]
        assert len(store.rows("ix|a|", "ix|a|202612", limit=2)) == 2
        store.put_row({"PartitionKey": "ix|a|202611", "RowKey": "1", "request_id": "again"})
        assert store.rows("ix|a|202611", "ix|a|202611", limit=1)[0]["request_id"] == "again"
        store.delete_row("ix|a|202611", "1")
        store.delete_row("ix|a|202611", "1")  # gone already: fine
        assert [r["RowKey"] for r in store.rows("ix|a|202611", "ix|a|202611", limit=10)] == ["2"]

    def test_a_batch_record_can_be_deleted(self, store: RecordStore) -> None:
        batch = BatchRecord(
            id="b-9", organizer=REQUEST.organizer, count=0, request_hash="h", submitted_by="functionKey", created_at=NOW
        )
        store.put_batch(batch)
        store.delete_batch("b-9")
        assert store.get_batch("b-9") is None

    def test_every_field_survives_the_round_trip(self, store: RecordStore) -> None:
        stored = store.insert(lifecycle.accept("c-5", REQUEST, source="queue", now=NOW))
        assert stored is not None
        failed = lifecycle.fail(
            replace(stored, throttle_count=2, throttled_since=NOW),
            now=NOW,
            failure=Failure.of(_graph_error()),
            resolution="the last attempt's outcome is unknown",
        )
        written = store.replace(failed)
        assert store.get("c-5") == written


def _graph_error() -> GraphPermanentError:
    answer = GraphAnswer(status=403, code="ErrorAccessDenied", request_id="r", date="d")
    return GraphPermanentError("denied", code="accessDenied", answer=answer)
