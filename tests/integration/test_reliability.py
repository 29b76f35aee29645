"""Never lose a request, never send a cancellation twice: idempotency, throttling and faults.

Each scenario asserts the final status, the number of successful cancel calls at the Graph
sandbox, and that nothing is unaccounted for (no message left behind, nothing unexpected in poison).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from azure.storage.queue import QueueClient

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import Fault, GraphSandbox, Limits
from local_runner.runner import LocalRunner
from meeting_cancel import service

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest, CuttableProxy, isolated_values


def test_same_idempotency_key_and_body_returns_the_same_request_and_queues_nothing_new(
    app: AppUnderTest, meeting: str
) -> None:
    body = {"organizer": ORGANIZER, "eventId": meeting, "comment": "Closed."}
    first = app.post(body, headers={"Idempotency-Key": "hr-4711"})
    again = app.post(body, headers={"Idempotency-Key": "hr-4711"})

    assert first.status == again.status == 202
    assert again.body["id"] == first.body["id"]
    assert again.headers["location"] == first.headers["location"]
    # The replay cannot tell a lost first message from a delivered one, so it sends it once more and
    # records it queued; a third replay sends nothing. The worker completes the copy as a duplicate.
    assert app.visible_messages() == 2
    app.post(body, headers={"Idempotency-Key": "hr-4711"})
    assert app.visible_messages() == 2

    app.drain()
    after = app.post(body, headers={"Idempotency-Key": "hr-4711"})
    assert after.body["id"] == first.body["id"]
    assert after.body["status"] == "cancelled"
    assert app.visible_messages() == 0
    assert app.sandbox.successful_cancels() == 1


def test_same_idempotency_key_with_another_body_is_refused(app: AppUnderTest, meeting: str) -> None:
    app.post({"organizer": ORGANIZER, "eventId": meeting}, headers={"Idempotency-Key": "k"})
    other = app.post({"organizer": ORGANIZER, "eventId": meeting, "comment": "x"}, headers={"Idempotency-Key": "k"})

    assert other.status == 422
    assert other.body["code"] == "idempotencyKeyReused"
    assert app.visible_messages() == 1


def test_invalid_idempotency_key_is_400(app: AppUnderTest, meeting: str) -> None:
    response = app.post({"organizer": ORGANIZER, "eventId": meeting}, headers={"Idempotency-Key": "has space"})
    assert response.status == 400
    assert response.body["code"] == "invalidIdempotencyKey"


def test_a_burst_of_500s_is_ridden_out_with_one_successful_cancel(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=3, operation="any"))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "cancelled"
    assert sandbox.successful_cancels() == 1
    assert app.poison_messages() == []


def test_429_without_retry_after_backs_off_exponentially(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=429, code="TooManyRequests"))
    response = app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.listener.drain_once()

    waiting = app.status(response.body["id"]).body
    assert waiting["status"] == "retrying"
    assert waiting["lastError"]["code"] == "throttled"
    app.drain(wait_for_delayed=10)

    assert app.status(response.body["id"]).body["status"] == "cancelled"
    assert sandbox.successful_cancels() == 1


def test_503_with_retry_after_is_throttling_and_verifies_before_calling_again(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=503, code="ServiceUnavailable", retry_after=1))
    response = app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.drain(wait_for_delayed=8)

    assert app.status(response.body["id"]).body["status"] == "cancelled"
    assert [c["operation"] for c in sandbox.calls()] == ["get", "cancel", "get", "cancel"]
    assert app.poison_messages() == []


def test_throttling_longer_than_the_cap_ends_failed_throttled(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    os.environ["THROTTLE_MAX_WAIT_SECONDS"] = "3"
    service.reset()
    sandbox.add_fault(Fault(action="status", status=429, code="ApplicationThrottled", retry_after=30))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "failed"
    assert result["error"]["code"] == "throttled"
    assert result["error"]["graph"]["status"] == 429
    assert sandbox.successful_cancels() == 0
    assert app.visible_messages() == 0


def test_identity_endpoint_down_for_a_while_is_retried(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.state.identity_down_until = time.time() + 600
    response = app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.listener.drain_once()

    waiting = app.status(response.body["id"]).body
    assert waiting["status"] == "retrying"
    assert waiting["lastError"]["code"] == "identityUnavailable"
    assert "managed identity endpoint failed" in caplog.text
    assert sandbox.calls() == []

    sandbox.state.identity_down_until = 0.0  # the endpoint recovers
    app.drain()
    assert app.status(response.body["id"]).body["status"] == "cancelled"
    assert sandbox.successful_cancels() == 1


def test_azurite_restarted_mid_run_loses_nothing(app: AppUnderTest, azurite: Azurite, sandbox: GraphSandbox) -> None:
    ids = [sandbox.create_event(ORGANIZER, f"Restart {n}", [ATTENDEE]) for n in range(4)]
    accepted = [app.post({"organizer": ORGANIZER, "eventId": event_id}).body["id"] for event_id in ids[:3]]

    azurite.stop()
    refused = app.post({"organizer": ORGANIZER, "eventId": ids[3]})
    azurite.start()

    assert refused.status == 503
    app.drain()
    for request_id in accepted:
        assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels() == 3
    assert sandbox.successful_cancels(ids[3]) == 0
    assert app.visible_messages() == 0


def test_outcome_is_recorded_before_the_message_is_completed(
    app: AppUnderTest, azurite: Azurite, sandbox: GraphSandbox, meeting: str
) -> None:
    """The table goes away right after Graph applied the cancel: the message must come back, and
    the next delivery must verify instead of cancelling again."""
    proxy = CuttableProxy(azurite.table_port)
    table_via_proxy = azurite.connection_string.replace(f":{azurite.table_port}/", f":{proxy.port}/")
    os.environ["AzureWebJobsStorage"] = table_via_proxy
    service.reset()
    try:
        sandbox.add_fault(Fault(action="hook_after_apply", hook=proxy.cut))
        response = app.post({"organizer": ORGANIZER, "eventId": meeting})
        app.listener.drain_once()
        assert app.visible_messages() == 1  # not completed: its outcome could not be recorded
        proxy.restore()

        app.drain(wait_for_delayed=30)
        assert app.status(response.body["id"]).body["status"] == "cancelled"
        assert sandbox.successful_cancels() == 1
        assert [c["operation"] for c in sandbox.calls()] == ["get", "cancel", "get"]
    finally:
        proxy.close()


def test_concurrent_deliveries_of_the_same_request_call_graph_once(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.state.limits = Limits(latency_seconds=(0.5, 0.5))
    message = {"id": "twice", "organizer": ORGANIZER, "eventId": meeting}
    app.put_message(message)
    app.put_message(message)
    app.listener.drain_once()

    assert app.status("twice").body["status"] == "cancelled"
    assert len(sandbox.calls("cancel")) == 1
    assert app.queue.get_queue_properties().approximate_message_count == 1  # the loser, put back for later


@pytest.mark.slow
def test_burst_of_200_requests_ends_cancelled_once_each(azurite: Azurite, tmp_path: Path) -> None:
    host_json = tmp_path / "host.json"
    queues = json.loads(Path("host.json").read_text())["extensions"]["queues"]
    host_json.write_text(
        json.dumps({"version": "2.0", "extensions": {"queues": {**queues, "visibilityTimeout": "00:00:01"}}})
    )
    values = isolated_values(azurite, "burst")
    runner = LocalRunner(port=0, host_json=host_json, values=values, data_dir=tmp_path).start()
    try:
        assert runner.sandbox is not None
        assert runner.http is not None
        sandbox = runner.sandbox
        sandbox.state.limits = Limits(
            concurrent_per_mailbox=4,
            per_mailbox_per_window=15,
            window_seconds=1.0,
            retry_after=1.0,
            latency_seconds=(0.02, 0.06),
        )
        organizers = [f"user{n}@contoso.com" for n in range(4)]
        events = []
        for organizer in organizers:
            sandbox.add_mailbox(organizer)
            events += [(organizer, sandbox.create_event(organizer, f"m{i}", [ATTENDEE])) for i in range(50)]
        started = time.monotonic()

        def post(pair: tuple[str, str]) -> str:
            reply = requests.post(
                f"{runner.http.base_url}/api/cancellations",  # type: ignore[union-attr]
                json={"organizer": pair[0], "eventId": pair[1]},
                headers={"x-functions-key": runner.http.host_key},  # type: ignore[union-attr]
                timeout=30,
            )
            assert reply.status_code == 202
            return str(reply.json()["id"])

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(post, events))
        pending = set(ids)
        deadline = time.monotonic() + 240
        while pending and time.monotonic() < deadline:
            for request_id in list(pending):
                reply = requests.get(
                    f"{runner.http.base_url}/api/cancellations/{request_id}",
                    headers={"x-functions-key": runner.http.host_key},
                    timeout=10,
                )
                if reply.status_code == 200:
                    assert reply.json()["status"] == "cancelled", reply.json()
                    pending.discard(request_id)
            time.sleep(0.5)
        elapsed = time.monotonic() - started

        assert not pending, f"{len(pending)} requests did not finish"
        throttled = sum(1 for call in sandbox.calls("cancel") if call.get("status") == 429)
        for _, event_id in events:
            assert sandbox.successful_cancels(event_id) == 1
        poison = QueueClient.from_connection_string(azurite.connection_string, values["CANCEL_QUEUE_NAME"] + "-poison")
        assert poison.peek_messages() == []
        print(f"\nburst: 200 requests over 4 mailboxes cancelled in {elapsed:.1f} s; {throttled} 429s received")
    finally:
        runner.stop()
