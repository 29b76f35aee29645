"""The socket side of the local HTTP host: bounded threads, read timeouts, bodies read only when
they may be.

One watcher thread holds every connection until a whole request head (request line and headers)
has arrived; only then does a worker thread (at most ``workers`` of them) parse and serve it, and
between keep-alive requests the connection goes back to the watcher. So silent, idle or slowly
trickling sockets cost a file descriptor, not a thread, and are closed when a head does not
complete within the read timeout. The body is read only after routing and the key check passed and
its declared length is within the limit (Kestrel checks ``Content-Length`` against
``MaxRequestBodySize`` before reading and answers 413: dotnet/aspnetcore
``Http1ContentLengthMessageBody.OnReadStarting``); a refused request's connection is closed.
"""

from __future__ import annotations

import contextlib
import io
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
MAX_HEAD_BYTES = 32 * 1024  # Kestrel's MaxRequestHeadersTotalSize; beyond it the parser answers 431
HEAD_END = b"\r\n\r\n"


class BodyTooLarge(Exception):
    pass


class Host(Protocol):
    max_body_bytes: int

    def route(self, method: str, raw_url: str, headers: dict[str, str]) -> Any: ...

    def invoke(self, routed: Any, body: bytes) -> func.HttpResponse: ...

    def too_large(self) -> func.HttpResponse: ...


class Parked:
    """A connection the watcher holds, with what it has read of the next request's head."""

    def __init__(self, sock: socket.socket, address: Any, deadline: float, received: bytes = b"") -> None:
        self.sock = sock
        self.address = address
        self.deadline = deadline
        self.received = bytearray(received)


class PrefixedReader(io.RawIOBase):
    """Reads what the watcher already received, then the socket (whose timeout applies)."""

    def __init__(self, prefix: bytes, sock: socket.socket) -> None:
        self._prefix = memoryview(prefix)
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        try:
            return self._sock.recv_into(buffer)
        except BlockingIOError:
            return None


class SocketWriter(io.BufferedIOBase):
    """Writes all of every buffer (``sendall``), as the standard handlers' writer does."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        return len(data)


class BoundedHTTPServer(HTTPServer):
    request_queue_size = 512  # Kestrel's listen backlog; a burst of connects is not refused or delayed

    def __init__(self, address: tuple[str, int], host: Host, *, workers: int = WORKERS) -> None:
        super().__init__(address, _handler(host))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http-host")
        self._incoming: queue.SimpleQueue[Parked] = queue.SimpleQueue()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._closing = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="http-host-watcher", daemon=True)
        self._watcher.start()

    # ----- called by serve_forever for each accepted connection
    def process_request(self, request: Any, client_address: Any) -> None:
        self.park(request, client_address, READ_TIMEOUT_SECONDS)

    def park(self, sock: socket.socket, address: Any, idle_timeout: float, received: bytes = b"") -> None:
        """Holds a connection without a thread until a whole request head has arrived."""
        self._incoming.put(Parked(sock, address, time.monotonic() + idle_timeout, received))
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def _watch(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_reader, selectors.EVENT_READ)
        parked: dict[socket.socket, Parked] = {}
        while not self._closing.is_set():
            soonest = min((p.deadline for p in parked.values()), default=time.monotonic() + 1.0)
            for key, _ in selector.select(timeout=max(0.0, min(1.0, soonest - time.monotonic()))):
                if key.fileobj is self._wake_reader:
                    with contextlib.suppress(OSError):
                        self._wake_reader.recv(4096)
                    continue
                assert isinstance(key.fileobj, socket.socket)
                self._receive(parked[key.fileobj], parked, selector)
            while not self._incoming.empty():
                connection = self._incoming.get()
                try:
                    connection.sock.setblocking(False)
                    selector.register(connection.sock, selectors.EVENT_READ)
                except (ValueError, OSError):  # closed meanwhile
                    continue
                parked[connection.sock] = connection
                if HEAD_END in connection.received:  # a pipelined request arrived with the last one
                    self._release(connection, parked, selector)
            now = time.monotonic()
            for connection in [p for p in parked.values() if p.deadline <= now]:
                self._drop(connection, parked, selector)
        for connection in list(parked.values()):
            self._drop(connection, parked, selector)
        selector.close()

    def _receive(self, connection: Parked, parked: dict[socket.socket, Parked], selector: Any) -> None:
        try:
            chunk = connection.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(connection, parked, selector)
            return
        if not connection.received:  # the head must follow its first byte promptly
            connection.deadline = min(connection.deadline, time.monotonic() + READ_TIMEOUT_SECONDS)
        connection.received += chunk
        if HEAD_END in connection.received or len(connection.received) > MAX_HEAD_BYTES:
            self._release(connection, parked, selector)

    def _release(self, connection: Parked, parked: dict[socket.socket, Parked], selector: Any) -> None:
        selector.unregister(connection.sock)
        del parked[connection.sock]
        connection.sock.settimeout(READ_TIMEOUT_SECONDS)
        self._pool.submit(self._serve, connection)

    def _drop(self, connection: Parked, parked: dict[socket.socket, Parked], selector: Any) -> None:
        selector.unregister(connection.sock)
        del parked[connection.sock]
        self.shutdown_request(connection.sock)

    def _serve(self, connection: Parked) -> None:
        handed_back = False
        try:
            handler = self.RequestHandlerClass(connection, connection.address, self)  # type: ignore[arg-type]
            handed_back = bool(getattr(handler, "handed_back", False))
        except OSError as error:  # the client went away or stalled mid-request
            log.debug("connection from %s ended: %r", connection.address, error)
        except Exception:
            self.handle_error(connection.sock, connection.address)
        finally:
            if not handed_back:
                self.shutdown_request(connection.sock)

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
