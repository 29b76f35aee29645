"""``python -m local_runner`` as a subprocess, for tests that need a fresh process (the SDK indexes
``function_app`` once per process, and ``CALLER_AUTH`` is read when it does) or a real crash."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from local_runner.azurite import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def read_banner(process: subprocess.Popen[str], timeout: float = 90) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("the runner stopped before it was ready:\n" + "".join(lines))
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(lines)
    raise AssertionError("the runner was not ready in time:\n" + "".join(lines))


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_runner_process(project_root: Path, data_dir: Path, **settings: str) -> subprocess.Popen[str]:
    """``python -m local_runner`` with its own data dir and, unless told, its own storage ports."""
    env = {k: v for k, v in os.environ.items() if k not in ("GRAPH_BASE_URL", "IDENTITY_ENDPOINT", "LOCAL_HOST_KEY")}
    env.update(
        {
            "PORT": str(free_port()),
            "LOCAL_DATA_DIR": str(data_dir),
            "LOCAL_STORAGE_PORTS": ",".join(str(free_port()) for _ in range(3)),
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
    )
    return subprocess.Popen(
        [sys.executable, "-m", "local_runner"],
        cwd=project_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class RunnerProcess:
    """A started runner whose output keeps being read (a full pipe would stall its logging)."""

    def __init__(self, project_root: Path, data_dir: Path, **settings: str) -> None:
        self.process = start_runner_process(project_root, data_dir, **settings)
        self.banner = read_banner(self.process)
        self.output: list[str] = [self.banner]
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signals the runner and waits for it; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def text(self) -> str:
        return "".join(self.output)
