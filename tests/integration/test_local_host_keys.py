"""Function keys through the local host, as the Azure host checks them (Azure/azure-functions-host
``AuthenticationLevelHandler.cs``, ``FunctionInvocationMiddleware.cs``): for auth level function a
request without a valid ``x-functions-key`` header or ``code`` query value is 401 before the app
runs; anonymous routes need no key. Entra mode registers the routes anonymous, so a signed-in
caller without a key reaches the app."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest
import requests

from local_runner.host import FunctionIndex, HttpHost
from local_runner.keys import HostKeys

from .local_host_process import PROJECT_ROOT, RunnerProcess

MASTER = "master-key-for-tests"
FUNCTION = "function-key-for-tests"


def fixture_app() -> func.FunctionApp:
    """One route per auth level; each answers with the route it ran as."""
    app = func.FunctionApp()

    @app.route(route="open", auth_level=func.AuthLevel.ANONYMOUS, methods=["GET"])
    def anonymous(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("open")

    @app.route(route="keyed", auth_level=func.AuthLevel.FUNCTION, methods=["GET", "POST"])
    def keyed(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("keyed")

    @app.route(route="admin", auth_level=func.AuthLevel.ADMIN, methods=["GET"])
    def admin(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("admin")

    return app


@pytest.fixture
def host() -> Iterator[HttpHost]:
    index = FunctionIndex.discover(fixture_app(), {})
    served = HttpHost(index, port=0, keys=HostKeys(master_key=MASTER, function_keys={"default": FUNCTION})).start()
    yield served
    served.stop()


def get(host: HttpHost, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.get(f"{host.base_url}/api/{path}", headers=headers or {}, timeout=10)


def test_a_function_route_without_a_key_is_the_hosts_401_with_an_empty_body(host: HttpHost) -> None:
    reply = get(host, "keyed")
    assert reply.status_code == 401
    assert reply.content == b""


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("keyed", {"x-functions-key": FUNCTION}),
        ("keyed", {"X-Functions-Key": FUNCTION}),  # header names are case-insensitive
        (f"keyed?code={FUNCTION}", {}),
        (f"keyed?CODE={FUNCTION}", {}),  # so are ASP.NET Core's query names
        ("keyed", {"x-functions-key": MASTER}),  # the master key opens every level
        ("admin", {"x-functions-key": MASTER}),
        ("open", {}),
    ],
)
def test_a_valid_key_or_an_anonymous_route_is_served(host: HttpHost, path: str, headers: dict[str, str]) -> None:
    reply = get(host, path, headers)
    assert reply.status_code == 200
    assert reply.text == path.split("?")[0]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("keyed", {"x-functions-key": "wrong"}),
        (f"keyed?code={FUNCTION}x", {}),
        ("keyed", {"x-functions-key": FUNCTION.upper()}),  # key values compare exactly
        (f"keyed?code={FUNCTION}", {"x-functions-key": "wrong"}),  # the header wins over code
        (f"keyed?code={FUNCTION}", {"x-functions-key": ""}),  # even when empty
        ("keyed?code=", {}),
        ("admin", {"x-functions-key": FUNCTION}),  # a function key is not the master key
    ],
)
def test_a_wrong_missing_or_insufficient_key_is_401(host: HttpHost, path: str, headers: dict[str, str]) -> None:
    assert get(host, path, headers).status_code == 401


def test_the_key_is_checked_before_the_body_is_read(host: HttpHost) -> None:
    """A 50 MB declared body without a key is refused at once: nothing of it was sent."""
    reply = requests.post(
        f"{host.base_url}/api/keyed", data=iter([b"x" * 10]), headers={"Content-Length": str(50 << 20)}, timeout=10
    )
    assert reply.status_code == 401


# ----- the project's app through `python -m local_runner` (a fresh process per mode)

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
TENANT = str(uuid.UUID(int=0x72F988BF86F141AF91AB2D7CD011DB47))


def principal(tenant: str, oid: str) -> str:
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/tenantid", "val": tenant},
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        {"typ": "name", "val": "Adele Vance"},
    ]
    document = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.slow
def test_function_key_mode_through_the_runner(tmp_path: Path) -> None:
    runner = RunnerProcess(PROJECT_ROOT, tmp_path / "local", CALLER_AUTH="functionKey")
    try:
        api = runner.banner.split("HTTP functions", 1)[1].split()[0].rsplit("/cancellations", 1)[0]
        key = (tmp_path / "local" / "host-key").read_text().strip()
        body = {"organizer": "adele.vance@contoso.com", "eventId": "AAMkAD-no-such-event="}

        refused = requests.post(f"{api}/cancellations", json=body, timeout=10)
        wrong = requests.post(f"{api}/cancellations", json=body, headers={"x-functions-key": "nope"}, timeout=10)
        by_header = requests.post(f"{api}/cancellations", json=body, headers={"x-functions-key": key}, timeout=10)
        by_code = requests.get(f"{api}/cancellations/{by_header.json()['id']}?code={key}", timeout=10)
        health = requests.get(f"{api}/health", timeout=10)
    finally:
        assert runner.stop() == 0, runner.text
    assert (refused.status_code, refused.content) == (401, b"")
    assert (wrong.status_code, wrong.content) == (401, b"")
    assert by_header.status_code == 202
    assert by_code.status_code in (200, 202)
    assert by_code.json()["id"] == by_header.json()["id"]
    assert health.status_code == 200


@pytest.mark.slow
def test_entra_mode_serves_a_signed_in_caller_without_a_key(tmp_path: Path) -> None:
    runner = RunnerProcess(
        PROJECT_ROOT,
        tmp_path / "local",
        CALLER_AUTH="entra",
        WEBSITE_AUTH_ENABLED="True",
        ENTRA_TENANT_ID=TENANT,
    )
    try:
        api = runner.banner.split("HTTP functions", 1)[1].split()[0].rsplit("/cancellations", 1)[0]
        signed_in = {PRINCIPAL_HEADER: principal(TENANT, str(uuid.uuid4()))}
        read = requests.get(f"{api}/cancellations/no-such-request", headers=signed_in, timeout=10)
        other_tenant = requests.get(
            f"{api}/cancellations/no-such-request",
            headers={PRINCIPAL_HEADER: principal(str(uuid.uuid4()), str(uuid.uuid4()))},
            timeout=10,
        )
    finally:
        assert runner.stop() == 0, runner.text
    for reply in (read, other_tenant):  # answered by the app (a problem document), not the host's empty 401
        assert reply.headers["Content-Type"].startswith("application/problem+json"), (reply.status_code, reply.text)
        assert reply.json()["code"]
    assert read.status_code == 404
    assert other_tenant.status_code == 403
