"""Drives the registered functions the way the host does, through the local host's own code:
real ``azure.functions`` requests and queue messages, Azurite, and the Graph sandbox."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time
from typing import Any

import azure.functions as func
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import GraphSandbox
from local_runner.host import FunctionIndex, HttpHost, QueueListener
from local_runner.keys import KEY_HEADER
from meeting_cancel.config import QueueHostSettings, StorageSettings

# The host's semantics with the waits shortened, so retries happen within a test.
FAST_QUEUE_HOST = QueueHostSettings(
    max_dequeue_count=5,
    batch_size=4,
    new_batch_threshold=2,
    max_polling_interval_seconds=0.2,
    visibility_timeout_seconds=0,
    message_encoding="none",
)


class Response:
    def __init__(self, response: func.HttpResponse) -> None:
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}
        self.mimetype = response.mimetype
        raw = response.get_body()
        self.body: Any = json.loads(raw) if raw else None


class AppUnderTest:
    def __init__(self, settings: dict[str, str], sandbox: GraphSandbox, azurite: Azurite) -> None:
        import function_app

        self.settings = settings
        self.sandbox = sandbox
        self.azurite = azurite
        self.index = FunctionIndex.discover(function_app.app, os.environ)
        self.http = HttpHost(self.index, port=0)
        storage = StorageSettings(connection_string=settings["AzureWebJobsStorage"])
        self.listener = QueueListener(self.index.queues[0], storage, FAST_QUEUE_HOST)
        self.listener.start_queues()
        self.queue = QueueClient.from_connection_string(settings["AzureWebJobsStorage"], settings["CANCEL_QUEUE_NAME"])
        self.poison = QueueClient.from_connection_string(
            settings["AzureWebJobsStorage"], settings["CANCEL_QUEUE_NAME"] + "-poison"
        )

    def close(self) -> None:
        self.http.stop()
        self.listener.stop()

    # ----- HTTP functions, through the local host's routing and real HttpRequest objects
    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> Response:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if not any(name.lower() == KEY_HEADER for name in all_headers):
            all_headers[KEY_HEADER] = self.http.host_key  # the host checks function keys first
        return Response(self.http.handle(method, path, all_headers, data))

    def post(self, body: Any, **kwargs: Any) -> Response:
        return self.request("POST", "/api/cancellations", body, **kwargs)

    def status(self, request_id: str) -> Response:
        return self.request("GET", f"/api/cancellations/{request_id}")

    # ----- the queue function, through the local host's listener
    def drain(self, *, wait_for_delayed: float = 0.0) -> int:
        """Delivers queued messages until none is visible (waiting up to ``wait_for_delayed``
        seconds for delayed copies to become visible); returns how many were handled."""
        handled = 0
        deadline = time.monotonic() + wait_for_delayed
        while True:
            count = self.listener.drain_once()
            handled += count
            if count == 0:
                if time.monotonic() >= deadline or self.queue.get_queue_properties().approximate_message_count == 0:
                    return handled
                time.sleep(0.2)

    def put_message(self, document: Any, *, base64_encoded: bool = False) -> None:
        text = document if isinstance(document, str) else json.dumps(document)
        if base64_encoded:
            client = QueueClient.from_connection_string(
                self.settings["AzureWebJobsStorage"],
                self.settings["CANCEL_QUEUE_NAME"],
                message_encode_policy=TextBase64EncodePolicy(),
            )
            client.send_message(text)
        else:
            self.queue.send_message(text)

    def poison_messages(self) -> list[str]:
        return [m.content for m in self.poison.peek_messages(max_messages=32)]

    def visible_messages(self) -> int:
        return len(self.queue.peek_messages(max_messages=32))

    def submit_and_process(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(body)
        assert response.status == 202, response.body
        self.drain()
        return dict(self.status(response.body["id"]).body)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class CuttableProxy:
    """A loopback TCP forwarder whose link can be cut and restored, to fail one service mid-run."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._cut = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.close()
            self._open.clear()

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: Any, sink: Any) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


def dead_endpoint_connection_string(azurite: Azurite, *, queue_dead: bool, table_dead: bool) -> str:
    """Azurite's connection string with the queue and/or table endpoint moved to a closed port."""
    from local_runner.azurite import free_port

    dead = free_port()
    parts = dict(part.split("=", 1) for part in azurite.connection_string.strip(";").split(";"))
    if queue_dead:
        parts["QueueEndpoint"] = f"http://127.0.0.1:{dead}/devstoreaccount1"
    if table_dead:
        parts["TableEndpoint"] = f"http://127.0.0.1:{dead}/devstoreaccount1"
    return ";".join(f"{k}={v}" for k, v in parts.items())


def queue_goes_down_after_start(azurite: Azurite) -> None:
    """The running app's queue endpoint stops answering while its table keeps working."""
    from meeting_cancel import service
    from meeting_cancel.config import Settings

    service.current()  # started: queues and table exist
    os.environ["AzureWebJobsStorage"] = dead_endpoint_connection_string(azurite, queue_dead=True, table_dead=False)
    service.reset()
    service._storage_ready = True
    service._current = service.Service.build(Settings.from_environ())


def isolated_values(azurite: Azurite, prefix: str, **extra: str) -> dict[str, str]:
    """Settings for an in-process runner with its own queue and table on the shared Azurite."""
    suffix = os.urandom(4).hex()
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "CANCEL_QUEUE_NAME": f"{prefix}-{suffix}",
        "STATUS_TABLE_NAME": f"{prefix}{suffix}",
        "ALLOWED_ORGANIZERS": "@contoso.com",
        **extra,
    }
