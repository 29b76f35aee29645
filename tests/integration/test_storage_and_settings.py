"""Storage outages at intake, a bad setting stopping the app's import, and readiness (the settings
themselves are checked in tests/unit/test_config.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from local_runner.azurite import Azurite
from meeting_cancel import service
from meeting_cancel.config import Settings
from meeting_cancel.status_store import StatusStore

from .conftest import ORGANIZER
from .support import AppUnderTest, dead_endpoint_connection_string, queue_goes_down_after_start


def test_storage_down_answers_503_with_retry_after(app: AppUnderTest, azurite: Azurite, meeting: str) -> None:
    os.environ["AzureWebJobsStorage"] = dead_endpoint_connection_string(azurite, queue_dead=True, table_dead=True)
    service.reset()

    response = app.post({"organizer": ORGANIZER, "eventId": meeting})

    assert response.status == 503
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert "nothing was queued" in response.body["detail"]


def test_queue_down_hands_the_request_to_the_sweep_instead_of_refusing_it(
    app: AppUnderTest, azurite: Azurite, meeting: str
) -> None:
    """The queue is down, the table is not: the request is recorded ``accepted`` and its message
    waits in a sweep row, so the answer is 202 (tests/integration/test_intake_faults.py follows it
    to the end); nothing is half-written and nothing is deleted."""
    queue_goes_down_after_start(azurite)

    response = app.post({"organizer": ORGANIZER, "eventId": meeting}, headers={"Idempotency-Key": "k-1"})
    assert response.status == 202
    assert response.body["status"] == "queued"

    store = StatusStore(Settings.from_environ())
    rows = list(store._table.list_entities())
    assert sorted(row["PartitionKey"][:10] for row in rows) == [response.body["id"][:10], "~service", "~unqueued~"]
    assert app.visible_messages() == 0


def test_status_lookup_with_storage_down_is_503(app: AppUnderTest, azurite: Azurite) -> None:
    os.environ["AzureWebJobsStorage"] = dead_endpoint_connection_string(azurite, queue_dead=True, table_dead=True)
    service.reset()
    assert app.status("some-id").status == 503


def test_importing_the_app_with_a_bad_setting_fails_with_its_name(project_root: Path) -> None:
    import subprocess
    import sys

    env = {
        "PATH": os.environ["PATH"],
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "ALLOWED_ORGANIZERS": "not a list!",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import function_app"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "ALLOWED_ORGANIZERS" in result.stderr


def test_readiness_reports_storage_and_identity_while_liveness_stays_ok(app: AppUnderTest, azurite: Azurite) -> None:
    assert app.request("GET", "/api/health/ready").body == {
        "status": "ready",
        "checks": {"storage": "ok", "identity": "ok"},
    }
    app.sandbox.state.identity_down_until = time.time() + 60
    service.reset()
    down = app.request("GET", "/api/health/ready")
    assert down.status == 503
    assert down.body["checks"]["identity"] == "unavailable"
    assert app.request("GET", "/api/health").body == {"status": "ok"}
