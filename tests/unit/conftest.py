"""The fast tier opens no sockets and starts no processes: a test that tries fails at once, naming
what it did, so nothing slow or networked creeps into ``make unit``."""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest


class _NoSocket(socket.socket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unit tests open no sockets: move this test to tests/integration")


def _no_process(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("unit tests start no processes: move this test to tests/integration")


@pytest.fixture(autouse=True)
def no_sockets_or_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "socket", _NoSocket)
    monkeypatch.setattr(subprocess, "Popen", _no_process)
