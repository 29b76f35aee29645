"""Intake's two writes (the status record, the queue message) under storage faults, through the
local host with an HTTP-aware proxy in front of Azurite that fails chosen calls (``fault_proxy``).

Whatever fails, intake converges: a 202 is processed, a 503 says whether anything can still happen,
a keyed retry reaches the one real request and queues its message when it may be missing, and the
sweep queues an accepted request's message without the caller. Each test counts the Graph calls.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import GraphSandbox
from local_runner.host import TimerListener
from meeting_cancel import idempotency, service, sweep
from meeting_cancel.records import Status, utcnow

from .conftest import ATTENDEE, ORGANIZER
from .fault_proxy import FaultProxy, Rule, through_proxies
from .support import AppUnderTest
from .test_operations import poisoned_request

QUEUE_WRITE = r"/messages$"  # POST <queue>/messages: put a message
HAND_OVER = r"~unqueued~"  # PUT <table>(PartitionKey='~unqueued~…',…): the sweep's row
EVERY_TRY = 3  # the queue and table clients try a call three times (two retries)


@dataclass
class Storage:
    queue: FaultProxy
    table: FaultProxy


@pytest.fixture
def storage(app: AppUnderTest, azurite: Azurite) -> Iterator[Storage]:
    """The app's storage calls go through fault proxies; the host's own queue polling does not."""
    faults = Storage(FaultProxy(azurite.queue_port), FaultProxy(azurite.table_port))
    os.environ["AzureWebJobsStorage"] = through_proxies(azurite, faults.queue, faults.table)
    service.reset()
    idempotency.secret_of(service.current().store)  # the table, the queues and the service secret exist
    yield faults
    faults.queue.stop()
    faults.table.stop()


def later(minutes: float) -> None:
    """The service's clock moves on, so the sweep finds the rows of the last minutes due."""
    service.current().clock = lambda: utcnow() + timedelta(minutes=minutes)


def run_sweep_timer(app: AppUnderTest) -> None:
    """The registered timer function, invoked as the local host invokes it."""
    [timer] = [t for t in app.index.timers if t.name == "sweep_unqueued"]  # retention is the other timer
    timer.call(**{timer.argument: TimerRequest(past_due=False)})


def stored_status(request_id: str) -> Status:
    record = service.current().store.get(request_id)
    assert record is not None
    return record.status


def due_rows() -> int:
    return len(service.current().store.unqueued_before(datetime.max.replace(tzinfo=utcnow().tzinfo), 1000))


def test_queue_write_and_hand_over_both_fail_503_says_retry_and_the_keyed_retry_queues_the_one_request(
    app: AppUnderTest, storage: Storage, meeting: str
) -> None:
    """The queue write fails, then so does the write that would hand the request to the sweep (the
    old code's clean-up delete failed here, and the keyed retry answered 202 for a request never queued)."""
    storage.queue.add(Rule("POST", QUEUE_WRITE, "refuse"))
    storage.table.add(Rule("PUT", HAND_OVER, "refuse"))
    body = {"organizer": ORGANIZER, "eventId": meeting}
    first = app.post(body, headers={"Idempotency-Key": "hr-17"})

    assert first.status == 503
    assert first.body["code"] == "outcomeUnknown"
    assert "same Idempotency-Key" in first.body["detail"]
    assert first.headers["retry-after"] == "10"
    assert app.visible_messages() == 0

    storage.queue.clear()
    storage.table.clear()
    retry = app.post(body, headers={"Idempotency-Key": "hr-17"})
    assert retry.status == 202
    assert retry.body["status"] == "queued"
    assert app.visible_messages() == 1  # the retry queued the message the first attempt could not
    assert stored_status(retry.body["id"]) == Status.QUEUED

    again = app.post(body, headers={"Idempotency-Key": "hr-17"})
    assert again.body["id"] == retry.body["id"]
    assert app.visible_messages() == 1  # known to be queued now: nothing sent again

    app.drain()
    assert app.status(retry.body["id"]).body["status"] == "cancelled"
    assert app.sandbox.successful_cancels() == 1
    assert len(app.sandbox.calls("cancel")) == 1
    deletes = [path for method, path in storage.table.calls if method == "DELETE"]
    assert all("PartitionKey='ix|" in path or "PartitionKey='ix%7C" in path for path in deletes), deletes
    # nothing is ever cleaned up: the only deletes are listing-index rows (a replay's, pending → final)


def test_a_queue_write_whose_answer_is_lost_is_answered_202_and_cancelled_once(
    app: AppUnderTest, storage: Storage, meeting: str
) -> None:
    """Stored, answer lost, on every try (three copies land): the old code answered 503 "nothing
    was queued", deleted the record, and the worker called Graph a second time."""
    lost = storage.queue.add(Rule("POST", QUEUE_WRITE, "lose", times=EVERY_TRY))
    body = {"organizer": ORGANIZER, "eventId": meeting, "comment": "Moved to Friday."}
    first = app.post(body, headers={"Idempotency-Key": "hr-18"})

    assert lost.caught == EVERY_TRY
    assert first.status == 202
    assert first.body["status"] == "queued"
    assert app.visible_messages() == EVERY_TRY
    assert due_rows() == 1  # handed to the sweep, in case nothing had landed

    app.drain()
    retry = app.post(body, headers={"Idempotency-Key": "hr-18"})
    assert retry.body["id"] == first.body["id"]
    assert retry.body["status"] == "cancelled"
    assert app.sandbox.successful_cancels() == 1
    assert len(app.sandbox.calls("cancel")) == 1
    assert app.poison_messages() == []

    later(minutes=3)
    report = sweep.run(service.current())
    assert (report.resent, report.settled) == (0, 1)  # the worker had it: nothing sent again
    assert due_rows() == 0
    assert app.visible_messages() == 0


def test_the_sweep_queues_an_accepted_request_whose_queue_write_failed_without_the_caller(
    app: AppUnderTest, storage: Storage, meeting: str
) -> None:
    storage.queue.add(Rule("POST", QUEUE_WRITE, "refuse"))
    accepted = app.post({"organizer": ORGANIZER, "eventId": meeting, "comment": "Room closed."})

    assert accepted.status == 202
    assert app.visible_messages() == 0
    assert stored_status(accepted.body["id"]) == Status.ACCEPTED
    storage.queue.clear()

    run_sweep_timer(app)  # within the grace minute: its message may still be landing
    assert app.visible_messages() == 0

    later(minutes=3)
    run_sweep_timer(app)
    assert app.visible_messages() == 1
    assert stored_status(accepted.body["id"]) == Status.QUEUED
    assert due_rows() == 0

    app.drain()
    assert app.status(accepted.body["id"]).body["status"] == "cancelled"
    assert app.sandbox.successful_cancels(meeting) == 1
    assert {n["comment"] for n in app.sandbox.state.outbox} == {"Room closed."}  # the caller's message


def test_a_sweep_that_fails_leaves_its_row_for_the_next_run(app: AppUnderTest, storage: Storage, meeting: str) -> None:
    storage.queue.add(Rule("POST", QUEUE_WRITE, "refuse"))
    accepted = app.post({"organizer": ORGANIZER, "eventId": meeting})
    later(minutes=3)

    assert sweep.run(service.current()).left == 1  # the queue is still refusing
    assert due_rows() == 1
    storage.queue.clear()
    assert sweep.run(service.current()).resent == 1
    app.drain()
    assert app.status(accepted.body["id"]).body["status"] == "cancelled"
    assert app.sandbox.successful_cancels() == 1


def test_two_sweeps_at_once_cancel_each_meeting_once(
    app: AppUnderTest, storage: Storage, sandbox: GraphSandbox
) -> None:
    meetings = [sandbox.create_event(ORGANIZER, f"Sweep {n}", [ATTENDEE]) for n in range(3)]
    storage.queue.add(Rule("POST", QUEUE_WRITE, "refuse"))
    ids = [app.post({"organizer": ORGANIZER, "eventId": m}).body["id"] for m in meetings]
    storage.queue.clear()
    later(minutes=3)

    start = threading.Barrier(2)
    reports: list[sweep.SweepReport] = []

    def sweep_now() -> None:
        start.wait()
        reports.append(sweep.run(service.current()))

    threads = [threading.Thread(target=sweep_now) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r.resent for r in reports) >= 3
    assert sum(r.left for r in reports) == 0
    app.drain(wait_for_delayed=20)
    for request_id in ids:
        assert app.status(request_id).body["status"] == "cancelled"
    for event_id in meetings:
        assert sandbox.successful_cancels(event_id) == 1
    assert len(sandbox.calls("cancel")) == 3
    assert due_rows() == 0
    assert app.poison_messages() == []


RECORD_INSERT = r"/status[0-9a-f]+$"  # POST <table>: insert an entity


def test_a_record_insert_whose_answer_is_lost_converges_on_the_one_request(
    app: AppUnderTest, storage: Storage, meeting: str
) -> None:
    """The insert is stored and its answer lost (the table client does not retry a POST whose answer
    never came): 503 "nothing was queued" is true, no message was sent, and the keyed retry finds
    the record and queues its message."""
    storage.table.add(Rule("POST", RECORD_INSERT, "lose"))
    body = {"organizer": ORGANIZER, "eventId": meeting}
    first = app.post(body, headers={"Idempotency-Key": "hr-19"})
    assert first.status == 503
    assert first.body["code"] == "storageUnavailable"
    assert app.visible_messages() == 0

    storage.table.clear()
    retry = app.post(body, headers={"Idempotency-Key": "hr-19"})
    assert retry.status == 202
    assert app.visible_messages() == 1
    app.drain()
    assert app.status(retry.body["id"]).body["status"] == "cancelled"
    assert len(app.sandbox.calls("cancel")) == 1


def test_a_record_that_cannot_be_written_is_the_only_503_that_says_nothing_was_queued(
    app: AppUnderTest, storage: Storage, meeting: str
) -> None:
    storage.table.add(Rule("POST", RECORD_INSERT, "refuse"))
    refused = app.post({"organizer": ORGANIZER, "eventId": meeting})

    assert refused.status == 503
    assert refused.body["code"] == "storageUnavailable"
    assert not any(method == "POST" and path.endswith("/messages") for method, path in storage.queue.calls)


def test_the_local_hosts_timer_runs_the_sweep_on_its_schedule(
    app: AppUnderTest, storage: Storage, meeting: str, tmp_path: Path
) -> None:
    """The sweep needs nobody: the local host's timer listener fires ``sweep_unqueued`` on its
    NCRONTAB schedule (a clock running sixty times fast makes each minute a second)."""
    storage.queue.add(Rule("POST", QUEUE_WRITE, "refuse"))
    accepted = app.post({"organizer": ORGANIZER, "eventId": meeting})
    assert accepted.status == 202
    storage.queue.clear()
    later(minutes=3)

    started, origin = time.monotonic(), utcnow()
    [timer] = [t for t in app.index.timers if t.name == "sweep_unqueued"]  # retention is the other timer
    listener = TimerListener(
        timer, status_dir=tmp_path, clock=lambda: origin + (time.monotonic() - started) * timedelta(seconds=60)
    ).start()
    try:
        deadline = time.monotonic() + 30
        while app.visible_messages() == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        listener.stop()

    assert app.visible_messages() == 1
    app.drain()
    assert app.status(accepted.body["id"]).body["status"] == "cancelled"
    assert app.sandbox.successful_cancels(meeting) == 1


def test_a_retry_whose_record_write_fails_after_its_message_is_queued_is_retried_once(
    app: AppUnderTest, sandbox: GraphSandbox, storage: Storage, meeting: str
) -> None:
    """The operator's retry queues the message first; the worker takes a fresh message of a failed
    request for a redrive, so the request is retried once even though its record was never moved,
    and even when the first delivery's own redrive write fails too (the next delivery redrives)."""
    request_id = poisoned_request(app, sandbox, meeting)
    refused = storage.table.add(Rule("PUT", rf"PartitionKey='{request_id}'", "refuse", times=2 * EVERY_TRY))

    answer = app.request("POST", f"/api/cancellations/{request_id}/retry", None)

    assert answer.status == 202
    assert app.status(request_id).body["status"] == "failed"  # not moved: only the message says "retry"
    app.drain(wait_for_delayed=5)
    assert refused.caught == 2 * EVERY_TRY  # the API's write, then the first delivery's redrive
    assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1


def test_an_abort_whose_write_was_stored_but_its_answer_lost_answers_200(
    app: AppUnderTest, sandbox: GraphSandbox, storage: Storage, meeting: str
) -> None:
    request_id = app.post({"organizer": ORGANIZER, "eventId": meeting}).body["id"]
    storage.table.add(Rule("PUT", rf"PartitionKey='{request_id}'", "lose", times=1))

    answer = app.request("POST", f"/api/cancellations/{request_id}/abort", None)

    assert (answer.status, answer.body["status"]) == (200, "aborted")
    app.drain()
    assert sandbox.calls("cancel") == []


def test_a_retry_whose_message_is_not_confirmed_says_it_may_be_queued_and_is_cancelled_once(
    app: AppUnderTest, sandbox: GraphSandbox, storage: Storage, meeting: str
) -> None:
    request_id = poisoned_request(app, sandbox, meeting)
    lost = storage.queue.add(Rule("POST", QUEUE_WRITE, "lose", times=EVERY_TRY))  # each try stored, answer lost

    answer = app.request("POST", f"/api/cancellations/{request_id}/retry", None)

    assert (answer.status, answer.body["code"]) == (503, "outcomeUnknown")
    assert lost.caught == EVERY_TRY
    app.drain(wait_for_delayed=5)
    assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1


def test_a_batch_abort_that_storage_refuses_for_one_child_aborts_the_others_and_says_so(
    app: AppUnderTest, sandbox: GraphSandbox, storage: Storage
) -> None:
    for day in (2, 3, 4):
        sandbox.create_event(ORGANIZER, f"Review {day}", [ATTENDEE], start=f"2026-12-0{day}T09:00:00")
    window = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}
    batch = app.request("POST", f"/api/organizers/{ORGANIZER}/cancellations", window).body
    [refused_id, *others] = [child["id"] for child in batch["requests"]]
    refused = storage.table.add(Rule("PUT", rf"PartitionKey='{refused_id}'", "refuse", times=EVERY_TRY))

    partial = app.request("POST", f"/api/batches/{batch['id']}/abort", None)

    assert (partial.status, partial.body["code"]) == (503, "partiallyAborted")
    assert refused.caught == EVERY_TRY
    assert [app.status(i).body["status"] for i in others] == ["aborted", "aborted"]  # went on past the refusal
    again = app.request("POST", f"/api/batches/{batch['id']}/abort", None)
    assert again.status == 200
    app.drain()
    assert [app.status(i).body["status"] for i in [refused_id, *others]] == ["aborted"] * 3
    assert sandbox.calls("cancel") == []
