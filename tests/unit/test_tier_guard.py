"""The unit tier's guard holds: no socket, no process."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def test_a_socket_cannot_be_opened() -> None:
    with pytest.raises(RuntimeError, match="no sockets"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)


def test_a_process_cannot_be_started() -> None:
    with pytest.raises(RuntimeError, match="no processes"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
