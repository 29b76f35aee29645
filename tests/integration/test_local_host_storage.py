"""UseDevelopmentStorage=true as everywhere: Azurite's well-known development account, an Azurite
that already serves it is shared, anything else on its ports stops start-up naming the port. These
tests use other ports than 10000-10002 (LocalRunner.storage_ports) so that they stay isolated."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from local_runner.azurite import (
    DEVELOPMENT_PORTS,
    WELL_KNOWN_ACCOUNT_KEY,
    Azurite,
    connection_string,
    free_port,
    port_state,
)
from local_runner.graph_sandbox import rest_id
from local_runner.runner import LocalRunner, StartupError


def test_the_sdks_read_use_development_storage_as_the_runner_serves_it() -> None:
    queue = QueueClient.from_connection_string("UseDevelopmentStorage=true", "q")
    table = TableClient.from_connection_string("UseDevelopmentStorage=true", "t")
    assert queue.url == f"http://127.0.0.1:{DEVELOPMENT_PORTS[1]}/devstoreaccount1/q"
    assert table.url == f"http://127.0.0.1:{DEVELOPMENT_PORTS[2]}/devstoreaccount1"
    assert queue.credential.account_key == WELL_KNOWN_ACCOUNT_KEY
    assert isinstance(table.credential, AzureNamedKeyCredential)
    assert table.credential.named_key.key == WELL_KNOWN_ACCOUNT_KEY


@pytest.fixture
def foreign_server() -> Iterator[int]:
    """Something that is not Azurite, answering HTTP on a port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Server", "nginx")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def test_port_states(azurite: Azurite, foreign_server: int) -> None:
    assert port_state("127.0.0.1", free_port()) == "free"
    assert port_state("127.0.0.1", azurite.queue_port) == "azurite"
    assert port_state("127.0.0.1", azurite.table_port) == "azurite"
    assert port_state("127.0.0.1", foreign_server) == "other"


def development_values(prefix: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "CANCEL_QUEUE_NAME": f"{prefix}-{suffix}",
        "STATUS_TABLE_NAME": f"{prefix}{suffix}",
        "ALLOWED_ORGANIZERS": "@contoso.com",
    }


def test_something_else_on_a_storage_port_stops_start_up_naming_it(tmp_path: Path, foreign_server: int) -> None:
    runner = LocalRunner(
        port=0,
        data_dir=tmp_path,
        values=development_values("foreign"),
        storage_ports=(free_port(), foreign_server, free_port()),
    )
    with pytest.raises(StartupError, match=f"127.0.0.1:{foreign_server} \\(queue\\) is in use by something"):
        runner.start()
    assert runner.azurite is None
    assert not (tmp_path / "azurite").exists()


def test_an_azurite_with_another_account_is_refused_with_a_reason(tmp_path: Path, azurite: Azurite) -> None:
    ports = (azurite.blob_port, azurite.queue_port, azurite.table_port)
    runner = LocalRunner(port=0, data_dir=tmp_path, values=development_values("other"), storage_ports=ports)
    with pytest.raises(StartupError, match="refused the development account"):
        runner.start()


@pytest.fixture
def development_azurite(tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite serving the development account, as `npx azurite` would (on other ports)."""
    emulator = Azurite.development(tmp_path / "own", ports=(free_port(), free_port(), free_port())).start()
    yield emulator
    emulator.stop()


def test_an_azurite_already_serving_the_development_account_is_shared(
    tmp_path: Path, development_azurite: Azurite
) -> None:
    ports = (development_azurite.blob_port, development_azurite.queue_port, development_azurite.table_port)
    values = development_values("reused")
    runner = LocalRunner(port=0, data_dir=tmp_path / "runner", values=values, storage_ports=ports).start()
    try:
        assert runner.shared_azurite
        assert runner.azurite is None
        assert runner.http is not None
        # a workflow writes with the well-known account, as Storage Explorer or az storage would
        workflow = QueueClient.from_connection_string(
            connection_string("127.0.0.1", WELL_KNOWN_ACCOUNT_KEY, *ports), values["CANCEL_QUEUE_NAME"]
        )
        message = {"id": "flow-dev", "organizer": "adele.vance@contoso.com", "eventId": rest_id("demo/weekly")}
        workflow.send_message(json.dumps(message))
        status: dict[str, Any] = {}
        for _ in range(150):
            reply = requests.get(
                f"{runner.http.base_url}/api/cancellations/flow-dev",
                headers={"x-functions-key": runner.http.host_key},
                timeout=10,
            )
            status = reply.json() if reply.content else {}
            if reply.status_code == 200:
                break
            threading.Event().wait(0.2)
        assert status.get("status") == "cancelled", status
    finally:
        runner.stop()
    assert port_state("127.0.0.1", development_azurite.queue_port) == "azurite"  # not the runner's to stop


def test_the_runners_own_azurite_serves_the_development_account(tmp_path: Path) -> None:
    runner = LocalRunner(port=0, data_dir=tmp_path, values=development_values("own"), storage_ports=(0, 0, 0))
    runner.start()
    try:
        assert runner.azurite is not None
        assert runner.azurite.key == WELL_KNOWN_ACCOUNT_KEY
        queue_name = runner.values["CANCEL_QUEUE_NAME"]
        names = [q.name for q in runner_queue_service(runner).list_queues()]
        assert queue_name in names
    finally:
        runner.stop()


def runner_queue_service(runner: LocalRunner) -> Any:
    from azure.storage.queue import QueueServiceClient

    assert runner.azurite is not None
    a = runner.azurite
    return QueueServiceClient.from_connection_string(
        connection_string("127.0.0.1", WELL_KNOWN_ACCOUNT_KEY, a.blob_port, a.queue_port, a.table_port)
    )
