"""The socket side of the local HTTP host: bounded threads, read timeouts, bodies read only when
they may be.

A connection gets a worker thread only once it has sent something; until then (and between
keep-alive requests) one watcher thread holds it, and closes it when it stays silent too long. So
stalled or idle sockets cost a file descriptor, not a thread, and at most ``workers`` requests are
read at once. Every read has a timeout. The body is read only after routing and the key check
passed and its declared length is within the limit (Kestrel checks ``Content-Length`` against
``MaxRequestBodySize`` before reading and answers 413: dotnet/aspnetcore
``Http1ContentLengthMessageBody.OnReadStarting``); a refused request's connection is closed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol

import azure.functions as func

log = logging.getLogger("local_runner.host")
READ_TIMEOUT_SECONDS = 10.0  # a request line, header or body chunk must arrive within this
KEEP_ALIVE_SECONDS = 120.0  # Kestrel keeps idle connections 130 s; clients reconnect after
WORKERS = 64


class BodyTooLarge(Exception):
    pass


class Host(Protocol):
    max_body_bytes: int

    def route(self, method: str, raw_url: str, headers: dict[str, str]) -> Any: ...

    def invoke(self, routed: Any, body: bytes) -> func.HttpResponse: ...

    def too_large(self) -> func.HttpResponse: ...


class BoundedHTTPServer(HTTPServer):
    def __init__(self, address: tuple[str, int], host: Host, *, workers: int = WORKERS) -> None:
        super().__init__(address, _handler(host))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http-host")
        self._incoming: queue.SimpleQueue[tuple[socket.socket, Any, float]] = queue.SimpleQueue()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._closing = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="http-host-watcher", daemon=True)
        self._watcher.start()

    # ----- called by serve_forever for each accepted connection
    def process_request(self, request: Any, client_address: Any) -> None:
        self.wait_for_input(request, client_address, READ_TIMEOUT_SECONDS)

    def wait_for_input(self, connection: socket.socket, client_address: Any, timeout: float) -> None:
        """Parks a connection without a thread until it sends something or times out."""
        self._incoming.put((connection, client_address, time.monotonic() + timeout))
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def _watch(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_reader, selectors.EVENT_READ)
        deadlines: dict[socket.socket, tuple[Any, float]] = {}
        while not self._closing.is_set():
            soonest = min((d for _, d in deadlines.values()), default=time.monotonic() + 1.0)
            for key, _ in selector.select(timeout=max(0.0, min(1.0, soonest - time.monotonic()))):
                if key.fileobj is self._wake_reader:
                    with contextlib.suppress(OSError):
                        self._wake_reader.recv(4096)
                    continue
                connection = key.fileobj
                assert isinstance(connection, socket.socket)
                selector.unregister(connection)
                address, _ = deadlines.pop(connection)
                self._pool.submit(self._serve, connection, address)
            while not self._incoming.empty():
                connection, address, deadline = self._incoming.get()
                try:
                    selector.register(connection, selectors.EVENT_READ)
                except (ValueError, OSError):  # closed meanwhile
                    continue
                deadlines[connection] = (address, deadline)
            now = time.monotonic()
            for connection, (_, deadline) in list(deadlines.items()):
                if deadline <= now:
                    selector.unregister(connection)
                    del deadlines[connection]
                    self.shutdown_request(connection)
        for connection in deadlines:
            self.shutdown_request(connection)
        selector.close()

    def _serve(self, connection: socket.socket, address: Any) -> None:
        handed_back = False
        try:
            handler = self.RequestHandlerClass(connection, address, self)  # type: ignore[arg-type]
            handed_back = bool(getattr(handler, "handed_back", False))
        except Exception:
            self.handle_error(connection, address)
        finally:
            if not handed_back:
                self.shutdown_request(connection)

    def server_close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")
        self._watcher.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().server_close()
        for end in (self._wake_reader, self._wake_writer):
            end.close()


def _handler(host: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # answers go out at once, not after a delayed ACK
        timeout = READ_TIMEOUT_SECONDS
        handed_back = False
        server: BoundedHTTPServer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            log.debug(format, *args)

        def handle(self) -> None:
            """One request, then the connection goes back to the watcher while it is idle."""
            self.close_connection = True
            self.handle_one_request()
            while not self.close_connection:
                if not self._input_buffered():
                    self.server.wait_for_input(self.connection, self.client_address, KEEP_ALIVE_SECONDS)
                    self.handed_back = True
                    return
                self.handle_one_request()

        def _input_buffered(self) -> bool:
            """Whether a pipelined request is already waiting (never blocks)."""
            self.connection.setblocking(False)
            try:
                return bool(self.rfile.peek(1))  # type: ignore[attr-defined]
            except OSError:
                return False
            finally:
                self.connection.settimeout(self.timeout)

        def _serve(self) -> None:
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

        def _read_body(self, limit: int) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked(limit)
            declared = self.headers.get("Content-Length")
            if declared is None:
                return b""
            if not declared.strip().isdigit():
                raise ValueError(f"Content-Length {declared!r} is not a number of bytes")
            length = int(declared)
            if length > limit:
                raise BodyTooLarge
            return self.rfile.read(length) if length else b""

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
