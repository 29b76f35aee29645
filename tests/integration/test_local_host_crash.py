"""The local stack survives a crash: SIGKILL of ``python -m local_runner`` mid-processing stops
Azurite once and cleanly (its data saved), and a restart on the same data ends every accepted
request final with every meeting cancelled exactly once. Graph is a sandbox owned by this test, so
its state outlives the runner."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from local_runner.azurite import free_port
from local_runner.graph_sandbox import GraphSandbox, Limits

from .local_host_process import PROJECT_ROOT, RunnerProcess, port_open

ORGANIZERS = [f"crash{n}@contoso.com" for n in range(4)]
ATTENDEES = ["alex.wilber@contoso.com", "megan.bowen@contoso.com"]
KEY = "crash-test-key"


@pytest.fixture
def sandbox() -> Iterator[GraphSandbox]:
    graph = GraphSandbox(seed=False).start()
    for upn in ORGANIZERS + ATTENDEES:
        graph.add_mailbox(upn)
    graph.state.limits = Limits(concurrent_per_mailbox=4, latency_seconds=(0.4, 0.8))
    yield graph
    graph.stop()


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_runner_restarted_on_its_data_finishes_every_request_once(
    tmp_path: Path, sandbox: GraphSandbox
) -> None:
    events = {sandbox.create_event(o, f"Review {o} {n}", ATTENDEES): o for o in ORGANIZERS for n in range(10)}
    storage_ports = [free_port() for _ in range(3)]
    settings = {
        "PORT": str(free_port()),
        "LOCAL_STORAGE_PORTS": ",".join(map(str, storage_ports)),
        "LOCAL_HOST_KEY": KEY,
        "GRAPH_BASE_URL": sandbox.graph_base_url,
        "IDENTITY_ENDPOINT": sandbox.identity_endpoint,
        "IDENTITY_HEADER": sandbox.identity_header,
        "ALLOWED_ORGANIZERS": "@contoso.com",
        # Leases follow the Graph timeout (a claim holds 2 × timeout + 10 s): the sandbox answers in
        # milliseconds, so a short timeout lets the killed instance's claims expire sooner after restart.
        "GRAPH_TIMEOUT_SECONDS": "5",
    }
    data_dir = tmp_path / "local"
    api = f"http://127.0.0.1:{settings['PORT']}/api"
    headers = {"x-functions-key": KEY}

    first = RunnerProcess(PROJECT_ROOT, data_dir, **settings)
    try:

        def submit(pair: tuple[str, str]) -> str:
            event_id, organizer = pair
            reply = requests.post(
                f"{api}/cancellations", json={"organizer": organizer, "eventId": event_id}, headers=headers, timeout=30
            )
            assert reply.status_code == 202, reply.text
            return str(reply.json()["id"])

        with ThreadPoolExecutor(8) as pool:
            accepted = list(pool.map(submit, events.items()))
        wait_until(lambda: sandbox.successful_cancels() >= 8, 60, "the first cancellations")
    finally:
        killed = first.stop(signal.SIGKILL)
    assert killed == -signal.SIGKILL
    done_before_restart = sandbox.successful_cancels()
    assert done_before_restart < len(events), "the crash came too late to test anything"

    # Azurite, left behind, is stopped once and cleanly by its guard (a second SIGTERM mid-shutdown
    # would kill it before these lines, and before it saved its data)
    log_file = data_dir / "azurite" / "azurite.log"
    closed = [f"Azurite {service} service successfully closed" for service in ("Blob", "Queue", "Table")]
    wait_until(lambda: all(line in log_file.read_text() for line in closed), 60, "Azurite to close")
    wait_until(lambda: not any(port_open(p) for p in storage_ports), 60, "Azurite to stop listening")
    azurite_log = log_file.read_text()
    for line in closed:
        assert azurite_log.count(line) == 1, azurite_log

    second = RunnerProcess(PROJECT_ROOT, data_dir, **settings)
    try:
        statuses: dict[str, dict[str, Any]] = {}

        def all_final() -> bool:
            for request_id in accepted:
                if request_id in statuses:
                    continue
                reply = requests.get(f"{api}/cancellations/{request_id}", headers=headers, timeout=10)
                assert reply.status_code in (200, 202), (request_id, reply.status_code, reply.text)
                if reply.status_code == 200:
                    statuses[request_id] = reply.json()
            return len(statuses) == len(accepted)

        wait_until(all_final, 180, "every accepted request to be final")
    finally:
        assert second.stop() == 0, second.text[-4000:]

    outcomes = Counter(status["status"] for status in statuses.values())
    assert outcomes == {"cancelled": len(events)}, [s for s in statuses.values() if s["status"] != "cancelled"]
    cancelled_twice = {e: n for e in events if (n := sandbox.successful_cancels(e)) != 1}
    assert cancelled_twice == {}, f"meetings not cancelled exactly once: {cancelled_twice}"
    notices = Counter(notice["subject"] for notice in sandbox.state.outbox)
    assert set(notices.values()) == {len(ATTENDEES)}
    print(f"\ncrash: killed after {done_before_restart} of {len(events)} cancellations; all final after restart")
