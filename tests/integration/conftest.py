"""Integration fixtures: Azurite for the session, a Graph sandbox per test, and the app's registered
functions."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableClient

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import GraphSandbox

from .support import AppUnderTest

ORGANIZER = "adele.vance@contoso.com"
ATTENDEE = "alex.wilber@contoso.com"


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    emulator = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def sandbox() -> Iterator[GraphSandbox]:
    graph = GraphSandbox(seed=False).start()
    for upn in (ORGANIZER, ATTENDEE, "megan.bowen@contoso.com", "a+b@contoso.com"):
        graph.add_mailbox(upn)
    graph.add_mailbox("nomailbox@contoso.com", has_mailbox=False)
    yield graph
    graph.stop()


@pytest.fixture
def app_settings(azurite: Azurite, sandbox: GraphSandbox) -> dict[str, str]:
    """Settings for one test: its own queue and table, pointed at the sandbox and Azurite."""
    suffix = uuid.uuid4().hex[:12]
    values = {
        "AzureWebJobsStorage": azurite.connection_string,
        "CANCEL_QUEUE_NAME": f"cancel-{suffix}",
        "STATUS_TABLE_NAME": f"status{suffix}",
        "GRAPH_BASE_URL": sandbox.graph_base_url,
        "IDENTITY_ENDPOINT": sandbox.identity_endpoint,
        "IDENTITY_HEADER": sandbox.identity_header,
        "ALLOWED_ORGANIZERS": "@contoso.com",
        "GRAPH_TIMEOUT_SECONDS": "2",
    }
    os.environ.update(values)
    return values


@pytest.fixture
def app(app_settings: dict[str, str], sandbox: GraphSandbox, azurite: Azurite) -> Iterator[AppUnderTest]:
    under_test = AppUnderTest(app_settings, sandbox, azurite)
    yield under_test
    under_test.close()


@pytest.fixture
def meeting(sandbox: GraphSandbox) -> str:
    """A meeting organized by ORGANIZER with two attendees; its id ends in '='."""
    event_id = sandbox.create_event(ORGANIZER, "Quarterly planning", [ATTENDEE, "megan.bowen@contoso.com"])
    assert event_id.endswith("=")
    return event_id


@pytest.fixture
def table(azurite: Azurite) -> Iterator[TableClient]:
    """A table of its own on the session's Azurite, for stores that keep their own rows."""
    client = TableClient.from_connection_string(azurite.connection_string, f"t{uuid.uuid4().hex[:12]}")
    client.create_table()
    yield client
    client.delete_table()
