"""The benchmark's harness: Azurite behind counting proxies, the Graph sandbox, function hosts in
processes of their own (``bench.host``), CPU read per process, and the helpers each phase shares."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import GraphSandbox, Limits

from .counting_proxy import CountingProxy, through

ROOT = Path(__file__).resolve().parent.parent
ORGANIZER = "bench@contoso.com"
REALISTIC_LATENCY = (0.25, 0.6)  # what Graph's cancel takes in production (issue 18)
SHORT_LATENCY = (0.05, 0.15)  # short enough that this machine's CPU, not Graph, is the bound
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(times.get(pid, 0.0) for pid in tree)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class HostProcess:
    """``python -m bench.host``: the real app in the local host, in its own process."""

    def __init__(self, env: dict[str, str], work: Path) -> None:
        data = Path(tempfile.mkdtemp(dir=work))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.host"],
            cwd=ROOT,
            env={**os.environ, **env, "LOCAL_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if not line or line[0] != "ready":
            self.process.kill()
            raise RuntimeError(f"the bench host did not start: {line}")
        self.base_url, self.key = line[1], line[2]
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["x-functions-key"] = self.key

    @property
    def api(self) -> str:
        return f"{self.base_url}/api"

    def cpu(self) -> float:
        return process_tree_cpu(self.process.pid)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Stack:
    """One queue and one table for a phase, and the settings a host needs to use them."""

    bench: Bench
    counted: bool
    host_json: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _queue: QueueClient | None = None

    @property
    def queue_name(self) -> str:
        return f"bench-{self.suffix}"

    @property
    def env(self) -> dict[str, str]:
        bench = self.bench
        connection = bench.counted_connection if self.counted else bench.azurite.connection_string
        env = {
            "AzureWebJobsStorage": connection,
            "CANCEL_QUEUE_NAME": self.queue_name,
            "STATUS_TABLE_NAME": f"bench{self.suffix}",
            "ALLOWED_ORGANIZERS": "@contoso.com",
            "GRAPH_BASE_URL": bench.sandbox.graph_base_url,
            "IDENTITY_ENDPOINT": bench.sandbox.identity_endpoint,
            "IDENTITY_HEADER": bench.sandbox.identity_header,
            **self.extra,
        }
        if self.host_json is not None:
            env["BENCH_HOST_JSON"] = str(self.host_json)
        return env

    def host(self) -> HostProcess:
        host = HostProcess(self.env, self.bench.work)
        self.bench.hosts.append(host)
        return host

    def queue(self) -> QueueClient:
        """The phase's queue, straight to Azurite (what the bench itself sends is not counted)."""
        if self._queue is None:
            self._queue = QueueClient.from_connection_string(self.bench.azurite.connection_string, self.queue_name)
            with contextlib.suppress(ResourceExistsError):
                self._queue.create_queue()
        return self._queue

    def fill(self, events: list[tuple[str, str]]) -> None:
        """Puts one workflow message per (mailbox, event) on the queue, as a workflow would."""
        queue = self.queue()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda pair: queue.send_message(
                        json.dumps({"id": f"q-{uuid.uuid4().hex}", "organizer": pair[0], "eventId": pair[1]})
                    ),
                    events,
                )
            )

    def queue_length(self) -> int:
        return int(self.queue().get_queue_properties().approximate_message_count or 0)


class Bench:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.azurite = Azurite(work / "azurite").start()
        self.queue_proxy = CountingProxy(f"http://127.0.0.1:{self.azurite.queue_port}", "queue")
        self.table_proxy = CountingProxy(f"http://127.0.0.1:{self.azurite.table_port}", "table")
        self.counted_connection = through(self.azurite.connection_string, self.queue_proxy, self.table_proxy)
        self.sandbox = GraphSandbox(seed=False).start()
        self.hosts: list[HostProcess] = []
        self.latency(REALISTIC_LATENCY)

    @property
    def azurite_pid(self) -> int:
        assert self.azurite.process is not None
        return self.azurite.process.pid

    def latency(self, latency: tuple[float, float]) -> None:
        self.sandbox.state.limits = Limits(concurrent_per_mailbox=4, retry_after=1.0, latency_seconds=latency)

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()
        self.sandbox.stop()
        self.queue_proxy.stop()
        self.table_proxy.stop()
        self.azurite.stop()

    def stop_hosts(self) -> None:
        for host in self.hosts:
            host.stop()
        self.hosts = []

    def storage_operations(self) -> Counter[str]:
        return self.queue_proxy.take() + self.table_proxy.take()

    def meetings(self, mailboxes: list[str], per_mailbox: int) -> list[tuple[str, str]]:
        """Meetings organized in each mailbox, interleaved across mailboxes as a busy queue is."""
        for mailbox in mailboxes:
            if mailbox not in self.sandbox.state.mailboxes:
                self.sandbox.add_mailbox(mailbox)
        made = [
            [(m, self.sandbox.create_event(m, f"m-{uuid.uuid4().hex[:6]}", ["guest@fabrikam.com"])) for m in mailboxes]
            for _ in range(per_mailbox)
        ]
        return [pair for round_ in made for pair in round_]

    def applied(self, events: set[str]) -> int:
        with self.sandbox.state.lock:
            calls = self.sandbox.state.calls
            return sum(1 for c in calls if c["applied"] and c["operation"] == "cancel" and c.get("eventId") in events)

    def cancel_calls(self, events: set[str]) -> list[dict[str, Any]]:
        with self.sandbox.state.lock:
            calls = self.sandbox.state.calls
            return [dict(c) for c in calls if c["operation"] == "cancel" and c.get("eventId") in events]

    def wait_applied(self, events: set[str], timeout: float = 300) -> float:
        """Waits until every event was cancelled at the sandbox; when that happened."""
        deadline = time.monotonic() + timeout
        while self.applied(events) < len(events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.applied(events)} of {len(events)} cancelled")
            time.sleep(0.05)
        return time.perf_counter()

    def settle(self, stack: Stack, timeout: float = 60) -> None:
        """Waits for the queue to empty (outcomes recorded, messages deleted)."""
        deadline = time.monotonic() + timeout
        while stack.queue_length() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)

    @contextmanager
    def in_flight(self, mailboxes: list[str]) -> Iterator[list[float]]:
        """Samples the sandbox's concurrent calls for the mailboxes every 5 ms, from the first call on:
        the mean over the run, divided by the 4-call limit, is the share of Graph's ceiling used."""
        samples: list[float] = []
        stop = threading.Event()
        keys = [m.lower() for m in mailboxes]

        def sample() -> None:
            started = False
            while not stop.wait(0.005):
                with self.sandbox.state.lock:
                    value = sum(self.sandbox.state.in_flight.get(k, 0) for k in keys)
                started = started or value > 0
                if started:
                    samples.append(value)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield samples
        finally:
            stop.set()
            thread.join()
