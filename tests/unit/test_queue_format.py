"""The work queue's message format, retry policy and storage error translation: pure parts of the
worker's I/O, checked without storage."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from random import Random

import pytest
from azure.core.exceptions import ResourceExistsError, ServiceRequestError

from meeting_cancel.errors import StorageUnavailable
from meeting_cancel.models import QueuedCancelRequest
from meeting_cancel.retry_policy import RetryPolicy
from meeting_cancel.storage import storage_errors
from meeting_cancel.work_queue import decode, encode

REQUEST = QueuedCancelRequest(id="wf-1", organizer="adele.vance@contoso.com", eventId="AAMkAGI2TG93AAA=")


def test_messages_are_written_as_compact_json_without_absent_fields() -> None:
    text = encode(REQUEST)
    assert text == '{"organizer":"adele.vance@contoso.com","eventId":"AAMkAGI2TG93AAA=","id":"wf-1"}'
    assert QueuedCancelRequest.model_validate_json(text) == REQUEST


@pytest.mark.parametrize(
    "body",
    [
        encode(REQUEST).encode(),
        b"  " + encode(REQUEST).encode() + b"\n",
        base64.b64encode(encode(REQUEST).encode()),
    ],
    ids=["plain", "padded", "base64"],
)
def test_plain_and_base64_messages_are_read(body: bytes) -> None:
    assert decode(body) == encode(REQUEST)


@pytest.mark.parametrize("body", [b"not json at all", b"\xff\xfe", base64.b64encode(b"[1, 2]"), b"[1, 2]"])
def test_anything_else_is_unreadable(body: bytes) -> None:
    assert decode(body) is None


def test_backoff_doubles_from_two_seconds_up_to_five_minutes() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert policy.backoff(20) == 300.0


def test_jitter_adds_up_to_a_fifth_and_is_reproducible_with_a_seed() -> None:
    delays = [RetryPolicy.jittered(10.0, Random(seed)) for seed in range(200)]
    assert all(10.0 <= d <= 10.0 + 2.0 + 0.5 for d in delays)
    assert RetryPolicy.jittered(10.0, Random(7)) == RetryPolicy.jittered(10.0, Random(7))
    assert all(1000.0 <= RetryPolicy.jittered(1000.0, Random(s)) <= 1005.5 for s in range(50))


def test_the_last_delivery_is_the_hosts_max_dequeue_count() -> None:
    policy = RetryPolicy(max_deliveries=5)
    assert [policy.last_delivery(n) for n in (1, 4, 5, 6)] == [False, False, True, True]


def test_storage_errors_become_storage_unavailable_naming_the_operation() -> None:
    with pytest.raises(StorageUnavailable) as raised, storage_errors("enqueue"):
        raise ServiceRequestError("connection refused")
    assert raised.value.operation == "enqueue"
    assert "connection refused" in str(raised.value)


def test_errors_the_block_handles_itself_never_reach_the_translation() -> None:
    with storage_errors("create queue"):
        try:
            raise ResourceExistsError("exists")
        except ResourceExistsError:
            pass
    with pytest.raises(KeyError), storage_errors("read"):
        raise KeyError("not a storage error")


# ----- the service's note on its own messages: the record as intake stored it
def test_a_note_carries_the_record_and_its_etag_and_is_taken_off_before_validation() -> None:
    from datetime import UTC, datetime

    from meeting_cancel import lifecycle
    from meeting_cancel.work_queue import RecordNote, take_note

    now = datetime(2026, 5, 4, 9, 30, 15, 123456, tzinfo=UTC)
    record = lifecycle.accept("wf-1", REQUEST, source="http", now=now, body_hash="abc", submitted_by="functionKey")
    stored = replace(record, etag="W/\"datetime'2026-05-04T09%3A30%3A15.1234567Z'\"")

    document = json.loads(encode(REQUEST, RecordNote(record=stored)))
    note = take_note(document)

    assert note.record == stored
    assert note.record.etag == stored.etag
    assert QueuedCancelRequest.model_validate(document) == REQUEST  # the rest is the request alone


def test_a_workflow_message_has_no_note_and_a_delayed_copy_says_only_that_a_record_exists() -> None:
    from meeting_cancel.work_queue import RecordNote, take_note

    assert take_note(json.loads(encode(REQUEST))) == RecordNote()
    assert encode(REQUEST, RecordNote()) == encode(REQUEST)
    assert take_note(json.loads(encode(REQUEST, RecordNote(exists=True)))) == RecordNote(exists=True)


@pytest.mark.parametrize(
    "note",
    [{"etag": "W/1", "status": "unheard-of"}, {"etag": "W/1", "id": "wf-1"}, {"etag": 5}, {"etag": "W/1", "x": 1}],
)
def test_a_note_that_cannot_be_read_makes_the_worker_read_the_record(note: dict[str, object]) -> None:
    from meeting_cancel.work_queue import RecordNote, take_note

    assert take_note({**json.loads(encode(REQUEST)), "record": note}) == RecordNote(exists=True)


def test_a_note_that_is_not_an_object_is_ignored() -> None:
    from meeting_cancel.work_queue import RecordNote, take_note

    assert take_note({**json.loads(encode(REQUEST)), "record": "W/1"}) == RecordNote()
