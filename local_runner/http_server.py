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
import logging
import queue
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import HTTPServer
from typing import Any

from .http_connection import HEAD_END, MAX_HEAD_BYTES, READ_TIMEOUT_SECONDS, WORKERS, Parked
from .http_handler import Host, handler_for

log = logging.getLogger("local_runner.host")


class BoundedHTTPServer(HTTPServer):
    request_queue_size = 512  # Kestrel's listen backlog; a burst of connects is not refused or delayed

    def __init__(self, address: tuple[str, int], host: Host, *, workers: int = WORKERS) -> None:
        super().__init__(address, handler_for(host))
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
