"""The measured phases: intake against bare storage, end to end, and the worker against Graph's
4-concurrent ceiling. Each appends its rows to the table."""

from __future__ import annotations

import functools
import json
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from .harness import GRAPH_LATENCY, ORGANIZER, Bench, Row, percentile, timed


def intake(bench: Bench, rows: list[Row]) -> None:
    """POST latency against the bare storage work it wraps (one table insert, one queue send) on the
    same Azurite through the same counting proxies, with the worker paused so both run alone."""
    n = 150
    bench.pause_worker()
    connection = bench.values["AzureWebJobsStorage"]
    table = TableClient.from_connection_string(connection, f"base{uuid.uuid4().hex[:8]}")
    table.create_table()
    queue = QueueClient.from_connection_string(connection, f"base-{uuid.uuid4().hex[:8]}")
    queue.create_queue()

    def baseline() -> None:
        key = str(uuid.uuid4())
        table.create_entity({"PartitionKey": key, "RowKey": "request", "status": "queued", "organizer": ORGANIZER})
        queue.send_message(json.dumps({"id": key, "organizer": ORGANIZER, "eventId": "AAMkAAA="}))

    for _ in range(10):
        baseline()
        bench.post(bench.meeting())
    events = iter([bench.meeting() for _ in range(n)])
    base: list[float] = []
    service: list[float] = []
    for _ in range(n):  # interleaved, so both see the same machine
        base += timed(baseline, 1)
        service += timed(functools.partial(bench.post, next(events)), 1)
    ratio = statistics.median(service) / statistics.median(base)
    rows.append(
        Row(
            "intake p50 / p99 (sequential)",
            f"{statistics.median(service) * 1000:.1f} / {percentile(service, 99) * 1000:.1f} ms",
        )
    )
    rows.append(
        Row(
            "bare storage baseline p50 / p99",
            f"{statistics.median(base) * 1000:.1f} / {percentile(base, 99) * 1000:.1f} ms",
        )
    )
    rows.append(Row("intake overhead (p50 ÷ baseline p50)", f"{ratio:.2f}×", "≤ 1.5×", ratio <= 1.5))
    more = [bench.meeting() for _ in range(200)]
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bench.post, more))
    rate = len(more) / (time.perf_counter() - started)
    rows.append(Row("intake throughput (8 concurrent clients)", f"{rate:.0f} requests/s"))
    bench.storage_transactions()
    for _ in range(50):
        bench.post(bench.meeting())
    rows.append(Row("storage transactions per POST", f"{bench.storage_transactions() / 50:.1f}"))
    bench.resume_worker()
    deadline = time.monotonic() + 300
    while bench.queue_length() and time.monotonic() < deadline:
        time.sleep(0.5)


def end_to_end(bench: Bench, rows: list[Row]) -> None:
    idle = []
    for _ in range(12):
        time.sleep(2.5)  # let the host's polling back off to maxPollingInterval, as on an idle queue
        started = time.perf_counter()
        bench.wait_final(bench.post(bench.meeting()))
        idle.append(time.perf_counter() - started)
    p50 = statistics.median(idle)
    rows.append(
        Row("end to end, idle queue p50 / p99", f"{p50:.2f} / {percentile(idle, 99):.2f} s", "p50 ≤ 3 s", p50 <= 3.0)
    )
    events = [bench.meeting() for _ in range(60)]
    finished: list[float] = []

    def one(event_id: str) -> None:
        started = time.perf_counter()
        bench.wait_final(bench.post(event_id), interval=0.1)
        finished.append(time.perf_counter() - started)

    bench.storage_transactions()
    bench.polls = 0
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(one, events))
    time.sleep(1.0)  # the last messages are deleted
    transactions = bench.storage_transactions() - bench.polls  # each status poll reads the table once
    p50, p99 = statistics.median(finished), percentile(finished, 99)
    rows.append(Row("end to end, 60 at once p50 / p99", f"{p50:.2f} / {p99:.2f} s"))
    rows.append(
        Row("storage transactions per 1,000 cancellations (polls excluded)", f"{transactions / len(events) * 1000:.0f}")
    )


def worker(bench: Bench, rows: list[Row]) -> None:
    """Cancellations per second for one mailbox against Graph's 4-concurrent limit, as a fraction
    of the ceiling that limit allows (4 ÷ mean Graph latency), from a full queue."""
    n = 300
    ceiling = bare_graph_ceiling(bench)
    events = [bench.meeting() for _ in range(n)]
    wanted = set(events)
    bench.pause_worker()
    bench.use_direct_storage()  # the counting proxies cost CPU this machine's two cores would miss
    calls_before = len(bench.sandbox.calls())
    tokens_before = bench.sandbox.state.token_requests
    queue = QueueClient.from_connection_string(bench.values["AzureWebJobsStorage"], bench.values["CANCEL_QUEUE_NAME"])
    for event_id in events:
        queue.send_message(json.dumps({"id": f"w-{uuid.uuid4().hex}", "organizer": ORGANIZER, "eventId": event_id}))
    started = time.perf_counter()
    bench.resume_worker()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        applied = sum(1 for c in bench.sandbox.calls("cancel") if c["applied"] and c.get("eventId") in wanted)
        if applied >= n:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    while bench.queue_length() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the last outcomes are recorded and their messages deleted
    calls = [c for c in bench.sandbox.calls()[calls_before:] if c.get("eventId") in wanted]
    cancels = [c for c in calls if c["operation"] == "cancel"]
    throttled = sum(1 for c in cancels if c.get("status") == 429)
    rate = applied / elapsed
    theoretical = 4 / (sum(GRAPH_LATENCY) / 2)
    rows.append(
        Row("Graph double's ceiling (4 bare clients)", f"{ceiling:.1f}/s (4 ÷ mean latency: {theoretical:.0f}/s)")
    )
    share = rate / ceiling
    rows.append(
        Row(
            "worker throughput, one mailbox, full queue",
            f"{rate:.1f}/s = {share:.0%} of the ceiling",
            "≥ 90%",
            share >= 0.9,
        )
    )
    per_100 = throttled / n * 100
    rows.append(Row("429s per 100 cancellations", f"{per_100:.1f}", "≤ 5", per_100 <= 5))
    graph_calls = (len(calls) - throttled) / n
    rows.append(
        Row("Graph calls per 1,000 cancellations (common case)", f"{graph_calls * 1000:.0f}", "1,000", graph_calls == 1)
    )
    tokens = bench.sandbox.state.token_requests - tokens_before
    rows.append(
        Row(
            "token requests per 1,000 cancellations",
            f"{tokens / n * 1000:.1f} ({tokens} for all {n})",
            "1 per token lifetime",
            tokens <= 1,
        )
    )


def bare_graph_ceiling(bench: Bench, n: int = 200) -> float:
    """What the Graph double can serve to 4 clients doing nothing else, in this same process: the
    practical ceiling the worker is measured against."""
    events = iter([bench.meeting() for _ in range(n)])
    token = bench.sandbox.issue_token()["access_token"]
    bench.sandbox.state.token_requests -= 1  # not the service's token
    base = bench.sandbox.graph_base_url
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                event_id = next(events, None)
            if event_id is None:
                return
            session.post(
                f"{base}/users/{ORGANIZER}/events/{event_id}/cancel",
                json={},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ).raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(client) for _ in range(4)]:
            future.result()
    return n / (time.perf_counter() - started)
