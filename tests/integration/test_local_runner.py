"""The local runner: `python -m local_runner` end to end, and the host semantics it keeps."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest
import requests
from azure.storage.queue import QueueClient

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import Fault, rest_id
from local_runner.host import FunctionIndex, UnsupportedBinding
from local_runner.runner import LocalRunner
from local_runner.settings import load_values

from .local_host_process import port_open, read_banner, start_runner_process
from .support import isolated_values


@pytest.mark.slow
def test_make_run_cancels_the_seeded_meeting_and_stops_cleanly(project_root: Path, tmp_path: Path) -> None:
    process = start_runner_process(project_root, tmp_path / "local")
    try:
        banner = read_banner(process)
        api = re.search(r"HTTP functions\s+(http://127\.0\.0\.1:(\d+)/api)/cancellations", banner)
        curl = re.search(r"-d '(\{.*\})'", banner)
        sandbox_url = re.search(r"Graph sandbox\s+(http://127\.0\.0\.1:\d+)/v1\.0", banner)
        storage = re.search(r"blob (\d+), queue (\d+), table (\d+)", banner)
        assert api, banner
        assert curl, banner
        assert sandbox_url, banner
        assert storage, banner
        port = int(api.group(2))
        key = (tmp_path / "local" / "host-key").read_text().strip()
        assert key in banner
        assert oct((tmp_path / "local" / "host-key").stat().st_mode & 0o777) == "0o600"

        body = json.loads(curl.group(1))
        assert body["eventId"] == rest_id("demo/planning")
        url = f"{api.group(1)}/cancellations"
        assert requests.post(url, json=body, timeout=10).status_code == 401  # the host wants the key
        response = requests.post(url, json=body, headers={"x-functions-key": key}, timeout=10)
        assert response.status_code == 202
        location = response.headers["Location"]
        status = {}
        for _ in range(60):
            reply = requests.get(location, params={"code": key}, timeout=10)
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
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    sandbox_port = int(sandbox_url.group(1).rsplit(":", 1)[1])
    for closed in (port, sandbox_port, *(int(p) for p in storage.groups())):
        assert not port_open(closed), f"port {closed} still open after the runner stopped"
    azurite_log = (tmp_path / "local" / "azurite" / "azurite.log").read_text()
    for service in ("Blob", "Queue", "Table"):
        assert azurite_log.count(f"Azurite {service} service successfully closed") == 1, azurite_log


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


def key_of(runner: LocalRunner) -> dict[str, str]:
    assert runner.http is not None
    return {"x-functions-key": runner.http.host_key}


def wait_for_status(runner: LocalRunner, request_id: str, timeout: float = 30) -> dict[str, object]:
    assert runner.http is not None
    deadline = time.monotonic() + timeout
    while True:
        reply = requests.get(
            f"{runner.http.base_url}/api/cancellations/{request_id}", headers=key_of(runner), timeout=10
        )
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
        f"{runner.http.base_url}/api/cancellations",  # type: ignore[union-attr]
        timeout=10,
        headers=key_of(runner),
        json={"organizer": "adele.vance@contoso.com", "eventId": rest_id("demo/planning")},
    )

    deadline = time.monotonic() + 30
    while not queue.peek_messages() and time.monotonic() < deadline:
        time.sleep(0.2)
    [poisoned] = queue.peek_messages()
    assert json.loads(poisoned.content)["eventId"] == rest_id("demo/planning")
    graph_calls = runner.sandbox.calls()
    assert len(graph_calls) == 5  # one per delivery: the read before the cancel fails each time
    assert {call["operation"] for call in graph_calls} == {"get"}
    assert runner.sandbox.successful_cancels() == 0


def test_attendee_copy_fails_with_the_organizer_error(runner: LocalRunner) -> None:
    assert runner.sandbox is not None
    assert runner.http is not None
    attendee_copy = next(iter(runner.sandbox.state.events["alex.wilber@contoso.com"]))
    reply = requests.post(
        f"{runner.http.base_url}/api/cancellations",
        timeout=10,
        headers=key_of(runner),
        json={"organizer": "alex.wilber@contoso.com", "eventId": attendee_copy},
    )
    status = wait_for_status(runner, reply.json()["id"])

    assert status["status"] == "failed"
    assert status["error"]["code"] == "notOrganizer"  # type: ignore[index]
    assert "organizer" in status["error"]["message"]  # type: ignore[index]
    assert runner.sandbox.calls("cancel") == []  # the read before it showed isOrganizer false


def test_an_unknown_trigger_type_stops_start_up_with_its_name() -> None:
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="incoming/{name}", connection="AzureWebJobsStorage")
    def arrived(blob: func.InputStream) -> None:
        return None

    with pytest.raises(UnsupportedBinding, match="blobTrigger"):
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


def test_every_environment_variable_is_a_setting_and_wins_over_local_settings(tmp_path: Path) -> None:
    """As Core Tools: StartHostAction.UpdateEnvironmentVariables skips a local setting whose
    environment variable is set and not empty."""
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"A": "from-file", "B": "from-file", "EMPTY": "from-file"}})
    )
    environ = {"B": "from-env", "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0", "EMPTY": ""}
    values = load_values(tmp_path, environ)
    assert values == {
        "A": "from-file",
        "B": "from-env",
        "EMPTY": "from-file",
        "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0",
    }


def test_without_local_settings_the_committed_example_is_the_default(project_root: Path, tmp_path: Path) -> None:
    (tmp_path / "local.settings.example.json").write_text((project_root / "local.settings.example.json").read_text())
    values = load_values(tmp_path)
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert values["CANCEL_QUEUE_NAME"] == "cancel-requests"
    assert values["ALLOWED_ORGANIZERS"] == "@contoso.com"
