"""Starts and stops Azurite, the storage emulator, for the runner and the tests.

``UseDevelopmentStorage=true`` means Azurite's well-known development account on 127.0.0.1 ports
10000 (blob), 10001 (queue) and 10002 (table), as everywhere else (Azure/Azurite README, "Default
Storage Account" and "Connection Strings"; azure-storage-queue and azure-data-tables expand the
setting to the same): Storage Explorer, ``az storage`` and the SDKs reach the runner's queue with it.
``Azurite.development`` starts that one; the default ``Azurite(...)`` is an isolated instance on
free ports with a fresh random key, for tests.

Azurite runs under ``azurite_guard.py``, which stops it once and cleanly when the runner stops or
dies (see there why a parent-death signal did not).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
GUARD = Path(__file__).resolve().with_name("azurite_guard.py")
ACCOUNT = "devstoreaccount1"
# Public and documented by Microsoft (Azure/Azurite README, "Default Storage Account"): it is the
# same on every machine and protects nothing; it is what UseDevelopmentStorage=true stands for.
WELL_KNOWN_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEVELOPMENT_PORTS = (10000, 10001, 10002)  # blob, queue, table
PortState = Literal["free", "azurite", "other"]


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


def port_state(host: str, port: int) -> PortState:
    """Whether a port is free, served by an Azurite (its ``Server: Azurite-…`` header), or held by
    something else."""
    try:
        connection = socket.create_connection((host, port), timeout=1.0)
    except OSError:
        return "free"
    with connection:
        try:
            connection.sendall(f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                head += chunk
        except OSError:
            return "other"
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"server" and value.strip().lower().startswith(b"azurite"):
            return "azurite"
    return "other"


def connection_string(host: str, key: str, blob_port: int, queue_port: int, table_port: int) -> str:
    base = f"http://{host}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={base}:{blob_port}/{ACCOUNT};QueueEndpoint={base}:{queue_port}/{ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    data_dir: Path
    host: str = "127.0.0.1"
    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    key: str = field(default_factory=lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def development(cls, data_dir: Path, ports: tuple[int, int, int] = DEVELOPMENT_PORTS) -> Azurite:
        """The development account on the well-known ports (or others, for a second stack)."""
        blob, queue, table = ports
        return cls(data_dir, blob_port=blob, queue_port=queue, table_port=table, key=WELL_KNOWN_ACCOUNT_KEY)

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.key, self.blob_port, self.queue_port, self.table_port)

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
            [sys.executable, str(GUARD), *command],
            stdin=subprocess.PIPE,
            env=env,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # Ctrl-C in the terminal reaches the runner, which stops it in order
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
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # the guard stops Azurite once, cleanly
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log_path = self.data_dir / "azurite.log"
        return log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
