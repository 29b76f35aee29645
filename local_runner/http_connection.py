"""Connection primitives of the local HTTP host: limits, a connection parked without a thread, and
readers and writers over its socket."""

from __future__ import annotations

import io
import socket
from typing import Any

READ_TIMEOUT_SECONDS = 10.0  # a request head, or each read of a body, must arrive within this
KEEP_ALIVE_SECONDS = 120.0  # Kestrel keeps idle connections 130 s; clients reconnect after
WORKERS = 64
MAX_HEAD_BYTES = 32 * 1024  # Kestrel's MaxRequestHeadersTotalSize; beyond it the parser answers 431
HEAD_END = b"\r\n\r\n"


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
