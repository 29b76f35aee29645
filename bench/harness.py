"""The benchmark's harness: Azurite behind counting proxies, the local runner serving the real app
with the Graph sandbox, and the helpers each phase shares."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from azure.storage.queue import QueueClient

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import Limits
from local_runner.runner import LocalRunner

from .counting_proxy import CountingProxy

ROOT = Path(__file__).resolve().parent.parent
ORGANIZER = "bench@contoso.com"
GRAPH_LATENCY = (0.05, 0.15)


@dataclass
class Row:
    what: str
    figure: str
    target: str = ""
    passed: bool | None = None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(action: Callable[[], object], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


class Bench:
    def __init__(self, work: Path) -> None:
        self.azurite = Azurite(work / "azurite").start()
        self.queue_proxy = CountingProxy(f"http://127.0.0.1:{self.azurite.queue_port}")
        self.table_proxy = CountingProxy(f"http://127.0.0.1:{self.azurite.table_port}")
        connection = self.azurite.connection_string.replace(
            f":{self.azurite.queue_port}/", f":{self.queue_proxy.url.rsplit(':', 1)[1]}/"
        ).replace(f":{self.azurite.table_port}/", f":{self.table_proxy.url.rsplit(':', 1)[1]}/")
        suffix = uuid.uuid4().hex[:8]
        self.values = {
            "AzureWebJobsStorage": connection,
            "CANCEL_QUEUE_NAME": f"bench-{suffix}",
            "STATUS_TABLE_NAME": f"bench{suffix}",
            "ALLOWED_ORGANIZERS": "@contoso.com",
        }
        self.runner = LocalRunner(port=0, values=dict(self.values), data_dir=work)
        self.runner.start()
        assert self.runner.sandbox is not None and self.runner.http is not None
        self.sandbox = self.runner.sandbox
        self.api = f"{self.runner.http.base_url}/api"
        self.sandbox.add_mailbox(ORGANIZER)
        self.sandbox.state.limits = Limits(concurrent_per_mailbox=4, retry_after=1.0, latency_seconds=GRAPH_LATENCY)
        self.session = requests.Session()
        self.session.headers["x-functions-key"] = self.runner.http.host_key  # the host checks keys first
        self.polls = 0

    def pause_worker(self) -> None:
        for listener in self.runner.listeners:
            listener.stop()
        self.runner.listeners = []

    def resume_worker(self) -> None:
        import function_app
        from local_runner.host import FunctionIndex, QueueListener
        from meeting_cancel.config import StorageSettings, read_queue_host_settings

        storage = StorageSettings(connection_string=self.values["AzureWebJobsStorage"])
        index = FunctionIndex.discover(function_app.app, self.values)
        host = read_queue_host_settings(ROOT / "host.json")
        self.runner.listeners = [QueueListener(q, storage, host).start() for q in index.queues]

    def stop(self) -> None:
        self.runner.stop()
        self.queue_proxy.stop()
        self.table_proxy.stop()
        self.azurite.stop()

    def use_direct_storage(self) -> None:
        """From here on the app talks to Azurite directly, without the counting proxies."""
        from meeting_cancel import service

        self.values["AzureWebJobsStorage"] = self.azurite.connection_string
        os.environ["AzureWebJobsStorage"] = self.azurite.connection_string
        service.reset()

    def queue_length(self) -> int:
        queue = QueueClient.from_connection_string(self.azurite.connection_string, self.values["CANCEL_QUEUE_NAME"])
        return int(queue.get_queue_properties().approximate_message_count or 0)

    def storage_transactions(self) -> int:
        return self.queue_proxy.reset() + self.table_proxy.reset()

    def meeting(self) -> str:
        return self.sandbox.create_event(ORGANIZER, f"m-{uuid.uuid4().hex[:6]}", ["alex.wilber@contoso.com"])

    def post(self, event_id: str) -> str:
        reply = self.session.post(
            f"{self.api}/cancellations", json={"organizer": ORGANIZER, "eventId": event_id}, timeout=30
        )
        assert reply.status_code == 202, reply.text
        return str(reply.json()["id"])

    def wait_final(self, request_id: str, interval: float = 0.05, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self.session.get(f"{self.api}/cancellations/{request_id}", timeout=30)
            self.polls += 1
            if reply.status_code == 200:
                assert reply.json()["status"] == "cancelled", reply.text
                return
            time.sleep(interval)
        raise TimeoutError(request_id)
