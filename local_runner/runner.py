"""Puts the pieces together: storage and the Graph sandbox when the settings ask for the local
defaults, then the function host serving ``function_app.app``."""

from __future__ import annotations

import importlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueServiceClient

from meeting_cancel.config import APP_ROOT, StorageSettings, read_queue_host_settings

from .azurite import DEVELOPMENT_PORTS, Azurite, free_port, port_state
from .graph_sandbox import GraphSandbox
from .http_host import HttpHost, body_limit
from .index import FunctionIndex
from .keys import HostKeys, local_host_key
from .queue_host import QueueListener
from .settings import load_values
from .timer_host import TimerListener

log = logging.getLogger("local_runner")
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
PORTS_SETTING = "LOCAL_STORAGE_PORTS"
PORT_NAMES = ("blob", "queue", "table")


class StartupError(RuntimeError):
    """The local stack cannot start as configured; the message says what to change."""


@dataclass
class LocalRunner:
    port: int = 7071
    host: str = "127.0.0.1"
    data_dir: Path = APP_ROOT / ".local"
    host_json: Path = APP_ROOT / "host.json"
    sandbox_port: int = 0
    values: dict[str, str] = field(default_factory=load_values)
    # Where UseDevelopmentStorage=true listens: None reads LOCAL_STORAGE_PORTS, else 10000-10002;
    # (0, 0, 0) is an isolated Azurite on free ports (for tests).
    storage_ports: tuple[int, int, int] | None = None
    azurite: Azurite | None = None
    shared_azurite: bool = False
    sandbox: GraphSandbox | None = None
    http: HttpHost | None = None
    host_key_file: Path | None = None
    listeners: list[QueueListener] = field(default_factory=list)
    timers: list[TimerListener] = field(default_factory=list)

    def start(self) -> LocalRunner:
        try:
            self._start_storage()
            self._start_sandbox()
            os.environ.update(self.values)
            app_module = importlib.import_module("function_app")
            index = FunctionIndex.discover(app_module.app, self.values)
            key, self.host_key_file = local_host_key(self.values, self.data_dir)
            self.http = HttpHost(
                index,
                host=self.host,
                port=self.port,
                keys=HostKeys.single(key),
                max_body_bytes=body_limit(self.values),
            ).start()
            storage = StorageSettings(connection_string=self.values["AzureWebJobsStorage"])
            queue_settings = read_queue_host_settings(self.host_json)
            self.listeners = [QueueListener(q, storage, queue_settings).start() for q in index.queues]
            self.timers = [TimerListener(t, status_dir=self.data_dir / "timers").start() for t in index.timers]
        except BaseException:
            self.stop()
            raise
        return self

    def _start_storage(self) -> None:
        if self.values.get("AzureWebJobsStorage", DEVELOPMENT_STORAGE).lower() != DEVELOPMENT_STORAGE.lower():
            return
        ports = self.storage_ports or _ports_setting(self.values.get(PORTS_SETTING)) or DEVELOPMENT_PORTS
        azurite = Azurite.development(self.data_dir / "azurite", ports)
        if all(ports) and self._azurite_already_serves(ports):
            self.shared_azurite = True
        else:
            self.azurite = azurite.start()
            ports = (azurite.blob_port, azurite.queue_port, azurite.table_port)
        self.storage_ports = ports  # where it is served, for the banner and for tests
        self.values["AzureWebJobsStorage"] = (
            DEVELOPMENT_STORAGE if ports == DEVELOPMENT_PORTS else azurite.connection_string
        )
        if self.shared_azurite:
            self._check_development_account(azurite.connection_string, ports[1])

    def _azurite_already_serves(self, ports: tuple[int, int, int]) -> bool:
        states = {port: port_state(self.host, port) for port in ports}
        for name, port in zip(PORT_NAMES, ports, strict=True):
            if states[port] == "other":
                raise StartupError(
                    f"{self.host}:{port} ({name}) is in use by something that is not Azurite, and "
                    "UseDevelopmentStorage=true needs it: stop that process, set LOCAL_STORAGE_PORTS to "
                    "three free ports, or set AzureWebJobsStorage to another storage account"
                )
        queue_port, table_port = ports[1], ports[2]
        if states[queue_port] == states[table_port] == "azurite":
            return True
        serving = [f"{n} {p}" for n, p in zip(PORT_NAMES, ports, strict=True) if states[p] == "azurite"]
        if serving:
            raise StartupError(
                f"an Azurite serves {', '.join(serving)} but not both the queue and the table: start it "
                "with all three services (npx azurite) or stop it"
            )
        return False

    def _check_development_account(self, connection: str, queue_port: int) -> None:
        try:
            QueueServiceClient.from_connection_string(connection, retry_total=0).get_service_properties()
        except AzureError as error:
            raise StartupError(
                f"the Azurite on {self.host}:{queue_port} refused the development account "
                f"({type(error).__name__}); it was probably started with AZURITE_ACCOUNTS: restart it "
                "without, or set AzureWebJobsStorage to its connection string"
            ) from None
        log.info("using the Azurite already listening on %s:%d", self.host, queue_port)

    def _start_sandbox(self) -> None:
        if self.values.get("GRAPH_BASE_URL"):
            return
        self.sandbox = GraphSandbox(
            host=self.host, port=self.sandbox_port or free_port(self.host), identity_header=secrets.token_hex(16)
        ).start()
        self.values.update(
            {
                "GRAPH_BASE_URL": self.sandbox.graph_base_url,
                "IDENTITY_ENDPOINT": self.sandbox.identity_endpoint,
                "IDENTITY_HEADER": self.sandbox.identity_header,
            }
        )

    def stop(self) -> None:
        for timer in self.timers:
            timer.stop()
        self.timers = []
        for listener in self.listeners:
            listener.stop()
        self.listeners = []
        for part in (self.http, self.sandbox, self.azurite):
            if part is not None:
                part.stop()
        self.http = self.sandbox = self.azurite = None


def _ports_setting(value: str | None) -> tuple[int, int, int] | None:
    if not value:
        return None
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise StartupError(f"{PORTS_SETTING} must be three ports, blob,queue,table (e.g. 10000,10001,10002)")
    blob, queue, table = (int(p) for p in parts)
    return blob, queue, table
