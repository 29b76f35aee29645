"""Settings: read once, each malformed or missing one named (as functions-framework does), the
defaults of the design, identity-based storage and national clouds. No storage is reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from meeting_cancel.config import Settings
from meeting_cancel.errors import ConfigurationError


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
