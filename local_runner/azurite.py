"""Starts and stops Azurite, the storage emulator, for the runner and the tests.

Each start gets a fresh random account key (``AZURITE_ACCOUNTS``), so no key is ever written
down; the connection string is built from it.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class Azurite:
    data_dir: Path
    host: str = "127.0.0.1"
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    key: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        base = f"http://{self.host}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={self.key};"
            f"BlobEndpoint={base}:{self.blob_port}/{ACCOUNT};QueueEndpoint={base}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{ACCOUNT};"
        )

    def start(self, timeout: float = 30.0) -> Azurite:
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"Azurite is not installed at {AZURITE_BIN}: run 'npm ci' (make does it)")
        self.blob_port = self.blob_port or free_port(self.host)
        self.queue_port = self.queue_port or free_port(self.host)
        self.table_port = self.table_port or free_port(self.host)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(AZURITE_BIN),
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--location",
            str(self.data_dir),
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.blob_port),
            "--queueHost",
            self.host,
            "--queuePort",
            str(self.queue_port),
            "--tableHost",
            self.host,
            "--tablePort",
            str(self.table_port),
        ]
        env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{self.key}"}
        log_file = (self.data_dir / "azurite.log").open("ab")
        self.process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=log_file, start_new_session=True, preexec_fn=_die_with_parent
        )
        log_file.close()
        for port in (self.queue_port, self.table_port):
            if not wait_for_port(self.host, port, timeout):
                error = self._stop_and_read_errors()
                raise RuntimeError(f"Azurite did not listen on {self.host}:{port} within {timeout:g} s: {error}")
        return self

    def stop(self) -> None:
        self._stop_and_read_errors()

    def restart(self) -> None:
        """Stops and starts on the same ports and data, as a storage outage and recovery would."""
        self.stop()
        self.start()

    def _stop_and_read_errors(self) -> str:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log_path = self.data_dir / "azurite.log"
        return log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""


def _die_with_parent() -> None:
    """Asks Linux to stop Azurite if the runner itself is killed, so no orphan keeps the ports."""
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
