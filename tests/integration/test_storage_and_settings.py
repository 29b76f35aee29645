"""Storage outages at intake, and settings that stop start-up with the setting's name."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from local_runner.azurite import Azurite
from meeting_cancel import service
from meeting_cancel.config import Settings
from meeting_cancel.errors import ConfigurationError
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


def test_queue_down_leaves_no_half_written_request(app: AppUnderTest, azurite: Azurite, meeting: str) -> None:
    queue_goes_down_after_start(azurite)

    response = app.post({"organizer": ORGANIZER, "eventId": meeting}, headers={"Idempotency-Key": "k-1"})
    assert response.status == 503

    store = StatusStore(Settings.from_environ())
    records = list(store._table.list_entities())
    assert records == []
    assert app.visible_messages() == 0


def test_status_lookup_with_storage_down_is_503(app: AppUnderTest, azurite: Azurite) -> None:
    os.environ["AzureWebJobsStorage"] = dead_endpoint_connection_string(azurite, queue_dead=True, table_dead=True)
    service.reset()
    assert app.status("some-id").status == 503


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("CANCEL_QUEUE_NAME", "Bad_Name", "lowercase"),
        ("STATUS_TABLE_NAME", "bad-name", "letters and digits"),
        ("GRAPH_BASE_URL", "ftp://graph", "Graph root"),
        ("GRAPH_BASE_URL", "http://graph.microsoft.com/v1.0", "loopback"),
        ("ALLOWED_ORGANIZERS", "@contoso", "domain"),
        ("ALLOWED_ORGANIZERS", "contoso.com", "neither"),
        ("GRAPH_TIMEOUT_SECONDS", "soon", "not a number"),
        ("AzureWebJobsStorage__credential", "connectionstring", "managedidentity"),
    ],
)
def test_malformed_setting_is_named(name: str, value: str, fragment: str) -> None:
    environ = {
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net",
        name: value,
    }
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ(environ)
    assert raised.value.setting == name
    assert fragment in str(raised.value)


def test_missing_storage_setting_is_named() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environ({})
    assert raised.value.setting == "AzureWebJobsStorage"
    assert "__queueServiceUri" in str(raised.value)


def test_identity_based_storage_and_national_cloud_scope() -> None:
    settings = Settings.from_environ(
        {
            "AzureWebJobsStorage__accountName": "acct",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555",
            "GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0/",
        }
    )
    assert settings.storage.queue_service_uri == "https://acct.queue.core.windows.net"
    assert settings.storage.table_service_uri == "https://acct.table.core.windows.net"
    assert settings.storage.managed_identity_client_id == "11111111-2222-3333-4444-555555555555"
    assert settings.storage.connection_string is None
    assert settings.graph_scope == "https://graph.microsoft.us/.default"
    assert settings.graph_base_url == "https://graph.microsoft.us/v1.0"


def test_defaults_follow_the_design(project_root: Path) -> None:
    settings = Settings.from_environ({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert settings.queue_name == "cancel-requests"
    assert settings.poison_queue_name == "cancel-requests-poison"
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph_scope == "https://graph.microsoft.com/.default"
    assert not settings.organizers.configured
    assert settings.queue_host.max_dequeue_count == 5
    assert settings.queue_host.message_encoding == "none"


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
