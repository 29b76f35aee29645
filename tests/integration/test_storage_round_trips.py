"""The storage operations each path makes, counted by a proxy in front of Azurite: the common case
costs what README's performance section says it costs, and the shortcuts keep the guarantees
(a stale ETag in a message, a duplicate delivery, an identity outage before the claim)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from bench.counting_proxy import CountingProxy, through
from local_runner.azurite import Azurite
from local_runner.graph_sandbox import GraphSandbox

from .conftest import ORGANIZER
from .support import AppUnderTest


class Counted(AppUnderTest):
    def __init__(self, settings: dict[str, str], sandbox: GraphSandbox, azurite: Azurite) -> None:
        self.queue_proxy = CountingProxy(f"http://127.0.0.1:{azurite.queue_port}", "queue")
        self.table_proxy = CountingProxy(f"http://127.0.0.1:{azurite.table_port}", "table")
        connection = through(azurite.connection_string, self.queue_proxy, self.table_proxy)
        counted = {**settings, "AzureWebJobsStorage": connection}
        os.environ.update(counted)
        super().__init__(counted, sandbox, azurite)

    def take(self) -> Counter[str]:
        return self.table_proxy.take() + self.queue_proxy.take()

    def close(self) -> None:
        super().close()
        self.queue_proxy.stop()
        self.table_proxy.stop()


@pytest.fixture
def counted(app_settings: dict[str, str], sandbox: GraphSandbox, azurite: Azurite) -> Iterator[Counted]:
    under_test = Counted(app_settings, sandbox, azurite)
    warm = sandbox.create_event(ORGANIZER, "warm-up", ["alex.wilber@contoso.com"])
    under_test.submit_and_process({"organizer": ORGANIZER, "eventId": warm})  # tables, queues, token
    under_test.take()
    yield under_test
    under_test.close()


def table_ops(counts: Counter[str]) -> dict[str, int]:
    return {kind: n for kind, n in counts.items() if kind.startswith("table")}


def coordination_ops(counts: Counter[str]) -> int:
    """Writes to the coordination table (meeting rows, mailbox slots), another guarantee's cost."""
    return sum(n for kind, n in counts.items() if kind.startswith("coordination"))


def queue_writes(counts: Counter[str]) -> dict[str, int]:
    return {kind: n for kind, n in counts.items() if kind.startswith(("queue send", "queue delete", "queue update"))}


def test_http_request_costs_insert_and_send_then_one_conditional_claim_and_one_outcome(
    counted: Counted, sandbox: GraphSandbox
) -> None:
    event_id = sandbox.create_event(ORGANIZER, "m", ["alex.wilber@contoso.com"])
    response = counted.post({"organizer": ORGANIZER, "eventId": event_id})
    assert response.status == 202
    # the listing index (issue 17): the organizer's and the pending class's rows, written with the record
    assert counted.take() == Counter({"table insert": 1, "table update": 2, "queue send": 1})

    assert counted.drain() == 1
    worker = counted.take()
    # the meeting's row; a mailbox slot taken and given back; the recipient budget read and reserved
    assert coordination_ops(worker) == 5
    # claim with intake's ETag, outcome; no read. The index: the final class's row, the pending one removed
    assert table_ops(worker) == {"table update": 3, "table delete": 1}
    assert queue_writes(worker) == {"queue delete": 1}
    assert counted.status(response.body["id"]).body["status"] == "cancelled"
    assert sandbox.successful_cancels(event_id) == 1


def test_workflow_message_is_recorded_already_claimed_in_one_insert(counted: Counted, sandbox: GraphSandbox) -> None:
    event_id = sandbox.create_event(ORGANIZER, "m", ["alex.wilber@contoso.com"])
    counted.put_message({"id": "wf-claimed-1", "organizer": ORGANIZER, "eventId": event_id})
    counted.take()

    assert counted.drain() == 1
    worker = counted.take()
    # the meeting's row; a mailbox slot taken and given back; the recipient budget read and reserved
    assert coordination_ops(worker) == 5
    # accepted and claimed, outcome; the index: 2 rows with the record, then the class row moves
    assert table_ops(worker) == {"table insert": 1, "table update": 4, "table delete": 1}
    assert queue_writes(worker) == {"queue delete": 1}
    final = counted.status("wf-claimed-1").body
    assert (final["status"], final["attempts"], final["submittedBy"]) == ("cancelled", 1, "queue")
    assert sandbox.successful_cancels(event_id) == 1


def test_a_message_whose_record_moved_on_reads_it_and_sends_no_second_cancel(
    counted: Counted, sandbox: GraphSandbox
) -> None:
    event_id = sandbox.create_event(ORGANIZER, "m", ["alex.wilber@contoso.com"])
    request_id = counted.post({"organizer": ORGANIZER, "eventId": event_id}).body["id"]
    copy = counted.queue.peek_messages(max_messages=1)[0].content
    assert json.loads(copy)["record"]["etag"]
    counted.drain()
    counted.take()

    counted.put_message(copy)  # the same message delivered again, its ETag now out of date
    assert counted.drain() == 1

    worker = counted.take()
    assert table_ops(worker) == {"table update (412)": 1, "table read": 1}
    assert counted.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(event_id) == 1
    assert len([c for c in sandbox.calls("cancel") if c.get("eventId") == event_id]) == 1


def test_a_workflow_message_delivered_twice_is_cancelled_once(counted: Counted, sandbox: GraphSandbox) -> None:
    event_id = sandbox.create_event(ORGANIZER, "m", ["alex.wilber@contoso.com"])
    message = {"id": "wf-twice-1", "organizer": ORGANIZER, "eventId": event_id}
    counted.put_message(message)
    counted.drain()
    counted.take()

    counted.put_message(message)
    assert counted.drain() == 1

    assert table_ops(counted.take()) == {"table insert (409)": 1, "table read": 1}
    assert sandbox.successful_cancels(event_id) == 1
    assert len([c for c in sandbox.calls("cancel") if c.get("eventId") == event_id]) == 1


@pytest.mark.parametrize("by_http", [True, False], ids=["http", "workflow"])
def test_an_identity_outage_before_the_claim_is_recorded_as_a_retry_with_nothing_sent(
    counted: Counted, sandbox: GraphSandbox, by_http: bool
) -> None:
    from meeting_cancel import service

    event_id = sandbox.create_event(ORGANIZER, "m", ["alex.wilber@contoso.com"])
    if by_http:
        request_id = counted.post({"organizer": ORGANIZER, "eventId": event_id}).body["id"]
    else:
        request_id = "wf-identity-1"
        counted.put_message({"id": request_id, "organizer": ORGANIZER, "eventId": event_id})
    service.reset()  # a new process: no token cached yet
    sandbox.state.identity_down_until = time.time() + 60

    counted.listener.drain_once()

    status = counted.status(request_id).body
    assert (status["status"], status["attempts"]) == ("retrying", 0)
    assert status["lastError"]["code"] == "identityUnavailable"
    assert sandbox.calls("cancel") == [] or all(c.get("eventId") != event_id for c in sandbox.calls("cancel"))

    sandbox.state.identity_down_until = 0
    counted.drain(wait_for_delayed=0.5)
    final = counted.status(request_id).body
    assert (final["status"], final["attempts"]) == ("cancelled", 1)
    assert sandbox.successful_cancels(event_id) == 1


def test_a_batch_is_answered_from_the_records_it_just_wrote_not_read_back(
    counted: Counted, sandbox: GraphSandbox
) -> None:
    """A batch POST writes each child's record (with its index rows) and message and then the
    batch; its 202 is built from those records, so the answer reads no child back."""
    for day in (2, 3, 4):
        sandbox.create_event(ORGANIZER, f"Review {day}", ["alex.wilber@contoso.com"], start=f"2026-12-0{day}T09:00:00")
    answer = counted.request(
        "POST",
        f"/api/organizers/{ORGANIZER}/cancellations",
        {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"},
    )
    assert answer.status == 202
    assert answer.body["counts"]["queued"] == 3
    ops = table_ops(counted.take())
    assert ops.get("table read", 0) == 0, ops  # only the replay check, which finds no batch (404)
    assert ops["table insert"] == 3
