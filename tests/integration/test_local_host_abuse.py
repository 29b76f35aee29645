"""The local host under abuse: stalled connections, oversized bodies, encoded route values and
wrong methods, through real sockets against a tiny fixture app (functions-framework's style) and
through the project's routes."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator

import azure.functions as func
import pytest
import requests

from local_runner.host import FunctionIndex, HttpHost
from local_runner.http_host import DEFAULT_MAX_BODY_BYTES, body_limit

from .conftest import ORGANIZER
from .support import AppUnderTest

LIMIT = 65536


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[int] = []
        self.values: list[dict[str, str]] = []


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def host(recorder: Recorder) -> Iterator[HttpHost]:
    app = func.FunctionApp()

    @app.route(route="items/{name}", auth_level=func.AuthLevel.ANONYMOUS, methods=["GET"])
    def item(req: func.HttpRequest) -> func.HttpResponse:
        recorder.values.append(dict(req.route_params))
        return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")

    @app.route(route="upload", auth_level=func.AuthLevel.ANONYMOUS, methods=["POST", "PUT"])
    def upload(req: func.HttpRequest) -> func.HttpResponse:
        recorder.bodies.append(len(req.get_body()))
        return func.HttpResponse(str(len(req.get_body())))

    served = HttpHost(FunctionIndex.discover(app, {}), port=0, max_body_bytes=LIMIT).start()
    yield served
    served.stop()


def raw_exchange(host: HttpHost, request: bytes, *, timeout: float = 10) -> bytes:
    port = int(host.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


# ----- stalled connections


def open_stalled(host: HttpHost, count: int, first_bytes: bytes) -> list[socket.socket]:
    port = int(host.base_url.rsplit(":", 1)[1])
    sockets = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first_bytes:
            connection.sendall(first_bytes)
        sockets.append(connection)
    return sockets


@pytest.mark.parametrize(
    "first_bytes",
    [b"", b"GET /api/items/x HTTP/1.1\r\nHost: x\r\n"],  # silent, and a head that never ends (slowloris)
    ids=["silent", "unfinished-headers"],
)
def test_200_stalled_connections_do_not_pile_up_threads(host: HttpHost, first_bytes: bytes) -> None:
    baseline = threading.active_count()
    stalled = open_stalled(host, 200, first_bytes)
    try:
        time.sleep(1.0)  # let the host take them all in
        assert threading.active_count() - baseline <= 2  # the watcher holds them, not a thread each
        assert requests.get(f"{host.base_url}/api/items/ok", timeout=5).json() == {"name": "ok"}
    finally:
        for connection in stalled:
            connection.close()


@pytest.mark.parametrize("first_bytes", [b"", b"GET /api/items/x HTTP/1.1\r\n"], ids=["silent", "unfinished"])
def test_a_stalled_connection_is_closed_after_the_read_timeout(
    host: HttpHost, monkeypatch: pytest.MonkeyPatch, first_bytes: bytes
) -> None:
    import local_runner.http_server as server

    monkeypatch.setattr(server, "READ_TIMEOUT_SECONDS", 0.5)
    [connection] = open_stalled(host, 1, first_bytes)
    with connection:
        connection.settimeout(10)
        assert connection.recv(1) == b""  # closed by the host, not by this test's timeout


# ----- bodies


def test_a_declared_50_mb_body_is_refused_with_413_without_being_read(host: HttpHost, recorder: Recorder) -> None:
    head = f"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: {50 << 20}\r\n\r\n".encode()
    answer = raw_exchange(host, head + b"only the first bytes")
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in answer
    assert recorder.bodies == []


def test_a_client_that_expects_100_continue_is_refused_before_it_sends(host: HttpHost, recorder: Recorder) -> None:
    head = f"PUT /api/upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {50 << 20}\r\n\r\n"
    answer = raw_exchange(host, head.encode())
    assert answer.startswith(b"HTTP/1.1 413")  # no 100 Continue first: the body is never invited
    assert recorder.bodies == []


def test_a_client_that_expects_100_continue_is_invited_when_its_body_fits(host: HttpHost, recorder: Recorder) -> None:
    port = int(host.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(b"PUT /api/upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert connection.recv(64).startswith(b"HTTP/1.1 100 Continue")
        connection.sendall(b"hello")
        assert connection.recv(4096).startswith(b"HTTP/1.1 200")
    assert recorder.bodies == [5]


def test_a_chunked_body_over_the_limit_is_refused(host: HttpHost, recorder: Recorder) -> None:
    chunk = b"x" * 40000
    body = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(2)) + b"0\r\n\r\n"
    head = b"POST /api/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert raw_exchange(host, head + body).startswith(b"HTTP/1.1 413")
    assert recorder.bodies == []


def test_bodies_up_to_the_limit_are_served_whole(host: HttpHost, recorder: Recorder) -> None:
    assert requests.post(f"{host.base_url}/api/upload", data=b"x" * LIMIT, timeout=10).text == str(LIMIT)
    chunked = requests.post(f"{host.base_url}/api/upload", data=iter([b"a" * 1000, b"b" * 24]), timeout=10)
    assert chunked.text == "1024"
    assert recorder.bodies == [LIMIT, 1024]


def test_an_unreadable_content_length_is_400(host: HttpHost) -> None:
    answer = raw_exchange(host, b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize(
    ("setting", "limit"),
    [(None, DEFAULT_MAX_BODY_BYTES), ("65536", 65536), ("", DEFAULT_MAX_BODY_BYTES), ("64k", DEFAULT_MAX_BODY_BYTES)],
)
def test_the_body_limit_setting_is_read_as_the_host_reads_it(setting: str | None, limit: int) -> None:
    """HttpRequestBodySizeMiddleware: long.TryParse, else ScriptConstants.DefaultMaxRequestBodySize."""
    settings = {} if setting is None else {"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": setting}
    assert body_limit(settings) == limit


# ----- route values and methods


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        ("adele.vance%40contoso.com", "adele.vance@contoso.com"),
        ("a%2Fb", "a%2Fb"),  # an encoded slash stays encoded, as in ASP.NET Core routing
        ("a%2fb", "a%2fb"),
        ("50%25", "50%"),  # decoded once only
        ("caf%C3%A9", "café"),
        ("bad%FFutf8", "bad%FFutf8"),  # not UTF-8: left as sent
        ("plus+sign", "plus+sign"),
    ],
)
def test_route_values_are_percent_decoded_as_azure_does(
    host: HttpHost, recorder: Recorder, sent: str, received: str
) -> None:
    answer = raw_exchange(host, f"GET /api/items/{sent} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200")
    assert recorder.values == [{"name": received}]


def test_literal_segments_match_case_insensitively(host: HttpHost) -> None:
    assert requests.get(f"{host.base_url}/API/Items/x", timeout=10).status_code == 200


def test_a_method_the_route_does_not_take_is_405_with_allow(host: HttpHost) -> None:
    reply = requests.delete(f"{host.base_url}/api/upload", timeout=10)
    assert reply.status_code == 405
    assert reply.headers["Allow"] == "POST, PUT"
    assert requests.post(f"{host.base_url}/api/nowhere", timeout=10).status_code == 404


def test_the_projects_routes_decode_the_organizer_and_name_their_methods(app: AppUnderTest) -> None:
    window = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z", "preview": True}
    encoded = ORGANIZER.replace("@", "%40")
    preview = app.request("POST", f"/api/organizers/{encoded}/cancellations", window)
    plain = app.request("POST", f"/api/organizers/{ORGANIZER}/cancellations", window)
    assert (preview.status, preview.body) == (plain.status, plain.body)
    assert preview.status < 400, preview.body

    wrong = app.request("DELETE", "/api/cancellations")
    assert wrong.status == 405
    assert wrong.headers["allow"] == "GET, POST"  # GET lists requests (issue 17)


def test_stopping_the_host_closes_parked_connections(host: HttpHost) -> None:
    [connection] = open_stalled(host, 1, b"")
    host.stop()
    with connection, contextlib.suppress(ConnectionResetError):
        connection.settimeout(10)
        assert connection.recv(1) == b""
