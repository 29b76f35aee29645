"""One HTTP/1.1 request at a time on a connection the server released: route and check the key
before the body, read the body within the limit, answer, then give an idle connection back."""

from __future__ import annotations

import io
import logging
import socket
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Protocol

import azure.functions as func

from .http_connection import (
    HEAD_END,
    KEEP_ALIVE_SECONDS,
    MAX_HEAD_BYTES,
    READ_TIMEOUT_SECONDS,
    Parked,
    PrefixedReader,
    SocketWriter,
)

if TYPE_CHECKING:
    from .http_server import BoundedHTTPServer

log = logging.getLogger("local_runner.host")


class BodyTooLarge(Exception):
    pass


class Host(Protocol):
    max_body_bytes: int

    def route(self, method: str, raw_url: str, headers: dict[str, str]) -> Any: ...

    def invoke(self, routed: Any, body: bytes) -> func.HttpResponse: ...

    def too_large(self) -> func.HttpResponse: ...


def handler_for(host: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_SECONDS
        handed_back = False
        continue_pending = False
        server: BoundedHTTPServer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            log.debug(format, *args)

        def setup(self) -> None:
            parked: Parked = self.request
            self.connection = parked.sock
            self.connection.settimeout(self.timeout)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)  # no delayed-ACK wait
            self.rfile = io.BufferedReader(PrefixedReader(bytes(parked.received), parked.sock))
            self.wfile = SocketWriter(parked.sock)

        def handle(self) -> None:
            """One request, then the connection goes back to the watcher while it is idle."""
            self.close_connection = True
            self.handle_one_request()
            while not self.close_connection:
                pending = self._buffered_input()
                if HEAD_END not in pending:
                    self.server.park(self.connection, self.client_address, KEEP_ALIVE_SECONDS, pending)
                    self.handed_back = True
                    return
                self.handle_one_request()

        def _buffered_input(self) -> bytes:
            """What has already arrived of a pipelined next request (never blocks)."""
            self.connection.setblocking(False)
            try:
                return bytes(self.rfile.peek(MAX_HEAD_BYTES))  # type: ignore[attr-defined]
            except OSError:
                return b""
            finally:
                self.connection.settimeout(self.timeout)

        def _serve(self) -> None:
            try:
                self._answer()
            finally:
                self.continue_pending = False

        def _answer(self) -> None:
            headers = dict(self.headers.items())
            routed = host.route(self.command, self.path, headers)
            if isinstance(routed, func.HttpResponse):
                self._refuse(routed)
                return
            try:
                body = self._read_body(host.max_body_bytes)
            except BodyTooLarge:
                self._refuse(host.too_large())
                return
            except ValueError as error:
                self._refuse(func.HttpResponse(str(error), status_code=400))
                return
            except TimeoutError:
                self.close_connection = True
                return
            self._send(host.invoke(routed, body))

        def _refuse(self, response: func.HttpResponse) -> None:
            """An answer given without reading the body: the connection cannot be reused."""
            if self.headers.get("Content-Length", "0").strip() not in ("", "0") or self.headers.get(
                "Transfer-Encoding"
            ):
                self.close_connection = True
            self._send(response)

        def handle_expect_100(self) -> bool:
            """``100 Continue`` is sent only when the body is about to be read (as Kestrel does), so
            a client that asked first never sends a body the host refuses."""
            self.continue_pending = True
            return True

        def _read_body(self, limit: int) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._send_continue()
                return self._read_chunked(limit)
            declared = self.headers.get("Content-Length")
            if declared is None:
                return b""
            if not declared.strip().isdigit():
                raise ValueError(f"Content-Length {declared!r} is not a number of bytes")
            length = int(declared)
            if length > limit:
                raise BodyTooLarge
            if not length:
                return b""
            self._send_continue()
            return self.rfile.read(length)

        def _send_continue(self) -> None:
            if self.continue_pending:
                self.continue_pending = False
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        def _read_chunked(self, limit: int) -> bytes:
            body = bytearray()
            while True:
                line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                try:
                    size = int(line, 16)
                except ValueError:
                    raise ValueError("malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return bytes(body)
                if len(body) + size > limit:
                    raise BodyTooLarge
                body += self.rfile.read(size)
                self.rfile.readline(16)

        def _send(self, response: func.HttpResponse) -> None:
            payload = response.get_body() or b""
            self.send_response(response.status_code)
            headers = dict(response.headers.items())
            if response.mimetype and payload and "content-type" not in {k.lower() for k in headers}:
                charset = f"; charset={response.charset}" if response.charset else ""
                headers["Content-Type"] = f"{response.mimetype}{charset}"
            for name, value in headers.items():
                if name.lower() not in ("content-length", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def __getattr__(self, name: str) -> Any:
            """Every method reaches routing, which answers 405 for the ones a route does not take."""
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

    return Handler
