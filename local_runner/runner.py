"""Puts the pieces together: Azurite and the Graph sandbox when the settings ask for the local
defaults, then the function host serving ``function_app.app``."""

from __future__ import annotations

import importlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from meeting_cancel.config import APP_ROOT, StorageSettings, read_queue_host_settings

from .azurite import Azurite, free_port
from .graph_sandbox import GraphSandbox
from .host import FunctionIndex, HttpHost, QueueListener
from .settings import load_values

log = logging.getLogger("local_runner")
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"


@dataclass
class LocalRunner:
    port: int = 7071
    host: str = "127.0.0.1"
    data_dir: Path = APP_ROOT / ".local"
    host_json: Path = APP_ROOT / "host.json"
    sandbox_port: int = 0
    values: dict[str, str] = field(default_factory=load_values)
    azurite: Azurite | None = None
    sandbox: GraphSandbox | None = None
    http: HttpHost | None = None
    listeners: list[QueueListener] = field(default_factory=list)

    def start(self) -> LocalRunner:
        try:
            self._start_storage()
            self._start_sandbox()
            os.environ.update(self.values)
            app_module = importlib.import_module("function_app")
            index = FunctionIndex.discover(app_module.app, self.values)
            self.http = HttpHost(index, host=self.host, port=self.port).start()
            storage = StorageSettings(connection_string=self.values["AzureWebJobsStorage"])
            queue_settings = read_queue_host_settings(self.host_json)
            self.listeners = [QueueListener(q, storage, queue_settings).start() for q in index.queues]
        except BaseException:
            self.stop()
            raise
        return self

    def _start_storage(self) -> None:
        if self.values.get("AzureWebJobsStorage", DEVELOPMENT_STORAGE) != DEVELOPMENT_STORAGE:
            return
        self.azurite = Azurite(self.data_dir / "azurite", host=self.host).start()
        self.values["AzureWebJobsStorage"] = self.azurite.connection_string

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
        for listener in self.listeners:
            listener.stop()
        self.listeners = []
        for part in (self.http, self.sandbox, self.azurite):
            if part is not None:
                part.stop()
        self.http = self.sandbox = self.azurite = None
