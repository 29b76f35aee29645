"""The local runner: `python -m local_runner` end to end, and the host semantics it keeps."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest
import requests
from azure.storage.queue import QueueClient

from local_runner.azurite import Azurite, free_port
from local_runner.graph_sandbox import Fault, rest_id
from local_runner.host import FunctionIndex, UnsupportedBinding
from local_runner.runner import LocalRunner
from local_runner.settings import load_values

from .support import isolated_values


def read_banner(process: subprocess.Popen[str], timeout: float = 90) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("the runner stopped before it was ready:\n" + "".join(lines))
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(lines)
    raise AssertionError("the runner was not ready in time:\n" + "".join(lines))


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_make_run_cancels_the_seeded_meeting_and_stops_cleanly(project_root: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GRAPH_BASE_URL", "IDENTITY_ENDPOINT")}
    env.update({"PORT": str(port), "LOCAL_DATA_DIR": str(tmp_path / "local"), "PYTHONUNBUFFERED": "1"})
    process = subprocess.Popen(
        [sys.executable, "-m", "local_runner"],
        cwd=project_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = read_banner(process)
        curl = re.search(r"-d '(\{.*\})'", banner)
        assert curl, banner
        sandbox_url = re.search(r"Graph sandbox\s+(http://127\.0\.0\.1:\d+)/v1\.0", banner)
        assert sandbox_url, banner
        azurite_ports = [int(p) for p in re.search(r"Azurite\s+queue (\d+), table (\d+)", banner).groups()]

        body = json.loads(curl.group(1))
        assert body["eventId"] == rest_id("demo/planning")
        response = requests.post(f"http://127.0.0.1:{port}/api/cancellations", json=body, timeout=10)
        assert response.status_code == 202
        location = response.headers["Location"]
        status = {}
        for _ in range(60):
            reply = requests.get(location, timeout=10)
            status = reply.json()
            if reply.status_code == 200:
                break
            time.sleep(float(reply.headers["Retry-After"]) / 4)
        assert status["status"] == "cancelled"

        outbox = requests.get(f"{sandbox_url.group(1)}/sandbox/outbox", timeout=10).json()["value"]
        assert sorted(n["to"] for n in outbox) == ["alex.wilber@contoso.com", "megan.bowen@contoso.com"]
        assert {n["comment"] for n in outbox} == {body["comment"]}
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    sandbox_port = int(sandbox_url.group(1).rsplit(":", 1)[1])
    for closed in (port, sandbox_port, *azurite_ports):
        assert not port_open(closed), f"port {closed} still open after the runner stopped"


@pytest.fixture
def runner(azurite: Azurite, tmp_path: Path) -> Iterator[LocalRunner]:
    """The runner in this process with the real app, a seeded sandbox, and short host waits."""
    host_json = tmp_path / "host.json"
    host_json.write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "queues": {
                        "messageEncoding": "none",
                        "maxPollingInterval": "00:00:00.500",
                        "visibilityTimeout": "00:00:00",
                        "batchSize": 4,
                        "newBatchThreshold": 2,
                        "maxDequeueCount": 5,
                    }
                },
            }
        )
    )
    values = isolated_values(azurite, "run", GRAPH_TIMEOUT_SECONDS="2")
    local = LocalRunner(port=0, host_json=host_json, values=values, data_dir=tmp_path).start()
    yield local
    local.stop()


def wait_for_status(runner: LocalRunner, request_id: str, timeout: float = 30) -> dict[str, object]:
    assert runner.http is not None
    deadline = time.monotonic() + timeout
    while True:
        reply = requests.get(f"{runner.http.base_url}/api/cancellations/{request_id}", timeout=10)
        if reply.status_code == 200 or time.monotonic() > deadline:
            return dict(reply.json())
        time.sleep(0.2)


def test_plain_text_message_put_on_the_queue_is_processed(runner: LocalRunner) -> None:
    assert runner.sandbox is not None
    queue = QueueClient.from_connection_string(runner.values["AzureWebJobsStorage"], runner.values["CANCEL_QUEUE_NAME"])
    queue.send_message(
        json.dumps(
            {
                "id": "flow-1",
                "organizer": "adele.vance@contoso.com",
                "eventId": rest_id("demo/weekly"),
                "comment": "Series ends.",
            }
        )
    )

    assert wait_for_status(runner, "flow-1")["status"] == "cancelled"
    assert runner.sandbox.successful_cancels(rest_id("demo/weekly")) == 1


def test_a_message_that_always_fails_reaches_poison_after_max_dequeue_count(runner: LocalRunner) -> None:
    assert runner.sandbox is not None
    runner.sandbox.add_fault(Fault(action="status", status=503, code="ServiceUnavailable", times=100, operation="any"))
    queue = QueueClient.from_connection_string(
        runner.values["AzureWebJobsStorage"], runner.values["CANCEL_QUEUE_NAME"] + "-poison"
    )
    requests.post(
        f"{runner.http.base_url}/api/cancellations",
        timeout=10,  # type: ignore[union-attr]
        json={"organizer": "adele.vance@contoso.com", "eventId": rest_id("demo/planning")},
    )

    deadline = time.monotonic() + 30
    while not queue.peek_messages() and time.monotonic() < deadline:
        time.sleep(0.2)
    [poisoned] = queue.peek_messages()
    assert json.loads(poisoned.content)["eventId"] == rest_id("demo/planning")
    graph_calls = runner.sandbox.calls()
    assert len(graph_calls) == 5  # one per delivery: the cancel, then four verifications
    assert runner.sandbox.successful_cancels() == 0


def test_attendee_copy_fails_with_the_organizer_error(runner: LocalRunner) -> None:
    assert runner.sandbox is not None
    assert runner.http is not None
    attendee_copy = next(iter(runner.sandbox.state.events["alex.wilber@contoso.com"]))
    reply = requests.post(
        f"{runner.http.base_url}/api/cancellations",
        timeout=10,
        json={"organizer": "alex.wilber@contoso.com", "eventId": attendee_copy},
    )
    status = wait_for_status(runner, reply.json()["id"])

    assert status["status"] == "failed"
    assert "organizer" in status["error"]["message"]  # type: ignore[index]
    assert len(runner.sandbox.calls("cancel")) == 1


def test_an_unknown_trigger_type_stops_start_up_with_its_name() -> None:
    app = func.FunctionApp()

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
    def tick(timer: func.TimerRequest) -> None:
        return None

    with pytest.raises(UnsupportedBinding, match="timerTrigger"):
        FunctionIndex.discover(app, {})


def test_an_unknown_output_binding_stops_start_up_with_its_name() -> None:
    app = func.FunctionApp()

    @app.route(route="x")
    @app.queue_output(arg_name="out", queue_name="q", connection="AzureWebJobsStorage")
    def handler(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
        return func.HttpResponse("")

    with pytest.raises(UnsupportedBinding, match="'queue'"):
        FunctionIndex.discover(app, {})


def test_a_binding_expression_naming_an_unset_setting_stops_start_up() -> None:
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="%MISSING_QUEUE%", connection="AzureWebJobsStorage")
    def consume(msg: func.QueueMessage) -> None:
        return None

    with pytest.raises(UnsupportedBinding, match="MISSING_QUEUE"):
        FunctionIndex.discover(app, {})


def test_local_settings_then_environment_which_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"A": "from-file", "B": "from-file"}}))
    monkeypatch.setenv("B", "from-env")
    assert load_values(tmp_path) == {"A": "from-file", "B": "from-env"}


def test_without_local_settings_the_committed_example_is_the_default(project_root: Path, tmp_path: Path) -> None:
    (tmp_path / "local.settings.example.json").write_text((project_root / "local.settings.example.json").read_text())
    values = load_values(tmp_path)
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["CANCEL_QUEUE_NAME"] == "cancel-requests"
    assert values["ALLOWED_ORGANIZERS"] == "@contoso.com"
