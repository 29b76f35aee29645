"""The measured phases. Each starts the hosts it needs (``bench.host`` processes) on a queue and a
table of its own, measures, stops them, and appends its rows to the table."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from .harness import (
    ORGANIZER,
    REALISTIC_LATENCY,
    ROOT,
    SHORT_LATENCY,
    Bench,
    HostProcess,
    Row,
    Stack,
    own_cpu,
    percentile,
    process_tree_cpu,
    timed,
)

MAILBOXES = [f"bench{i:02d}@contoso.com" for i in range(20)]


def batch_size(host_json: Path | None) -> int:
    document = json.loads((host_json or ROOT / "host.json").read_text())
    return int(document["extensions"]["queues"]["batchSize"])


def intake(bench: Bench, rows: list[Row]) -> None:
    """POST latency against the bare storage work it wraps (the record insert with its two index
    rows sent at once, one queue send) on the same Azurite through the same counting proxies, with
    no worker running, interleaved so both see the same machine."""
    n = 200
    stack = Stack(bench, counted=True, extra={"BENCH_NO_WORKER": "1"})
    host = stack.host()
    bench.sandbox.add_mailbox(ORGANIZER)
    table = TableClient.from_connection_string(bench.counted_connection, f"base{uuid.uuid4().hex[:8]}")
    table.create_table()
    queue = QueueClient.from_connection_string(bench.counted_connection, f"base-{uuid.uuid4().hex[:8]}")
    queue.create_queue()

    writers = ThreadPoolExecutor(4)

    def baseline() -> None:
        """The storage work intake needs: the record with its two listing index rows (sent at once,
        as ``request_index`` does), then the message."""
        key = str(uuid.uuid4())
        row = {"RowKey": f"{10**13 - int(time.time() * 1000):013d}|{key}", "request_id": key}
        rows = [writers.submit(table.upsert_entity, {**row, "PartitionKey": p}) for p in ("ix-org", "ix-pending")]
        table.create_entity({"PartitionKey": key, "RowKey": "request", "status": "queued", "organizer": ORGANIZER})
        for write in rows:
            write.result()
        queue.send_message(json.dumps({"id": key, "organizer": ORGANIZER, "eventId": "AAMkAAA="}))

    def post(event_id: str) -> None:
        reply = host.session.post(
            f"{host.api}/cancellations", json={"organizer": ORGANIZER, "eventId": event_id}, timeout=30
        )
        assert reply.status_code == 202, reply.text

    events = [event for _, event in bench.meetings([ORGANIZER], n + 10)]

    def round_trip() -> None:
        assert host.session.get(f"{host.api}/health", timeout=30).status_code == 200

    for event in events[:10]:
        baseline()
        round_trip()
        post(event)
    base: list[float] = []
    empty: list[float] = []
    service: list[float] = []
    for event in events[10:]:
        base += timed(baseline, 1)
        empty += timed(round_trip, 1)
        service += timed(lambda e=event: post(e), 1)  # type: ignore[misc]
    ratio = statistics.median(service) / statistics.median(base)
    floor = statistics.median(base) + statistics.median(empty)
    rows.append(
        Row(
            "intake p50 / p99 (sequential)",
            f"{statistics.median(service) * 1000:.1f} / {percentile(service, 99) * 1000:.1f} ms",
        )
    )
    rows.append(
        Row(
            "bare storage work p50 / p99 (table insert with 2 index rows at once, queue send)",
            f"{statistics.median(base) * 1000:.1f} / {percentile(base, 99) * 1000:.1f} ms",
        )
    )
    rows.append(
        Row(
            "the local host's empty round trip p50 (GET /api/health)",
            f"{statistics.median(empty) * 1000:.1f} ms",
        )
    )
    rows.append(
        Row(
            "intake p50 ÷ bare storage work p50",
            f"{ratio:.2f}× (the host's round trip included)",
            "≤ 1.2×",
            ratio <= 1.2,
        )
    )
    beyond = statistics.median(service) / floor
    rows.append(Row("intake p50 ÷ (bare storage work p50 + the host's empty round trip p50)", f"{beyond:.2f}×"))
    bench.stop_hosts()


def one_mailbox(
    bench: Bench,
    rows: list[Row],
    *,
    hosts: int,
    latency: tuple[float, float],
    label: str,
    target: float | None,
    host_json: Path | None = None,
    n: int = 240,
) -> None:
    """A full queue for one mailbox: the mean number of concurrent cancels at the sandbox while it
    drains, divided by Graph's 4-per-mailbox limit (Little's law: the share of the ceiling that
    limit allows), and the 429s the sandbox answered."""
    bench.latency(latency)
    mailbox = f"one-{uuid.uuid4().hex[:6]}@contoso.com"
    pairs = bench.meetings([mailbox], n)
    events = {event for _, event in pairs}
    stack = Stack(bench, counted=False, host_json=host_json)
    stack.fill(pairs)
    with bench.in_flight([mailbox]) as samples:
        for _ in range(hosts):
            stack.host()
        bench.wait_applied(events)
    share = statistics.fmean(samples) / 4 if samples else 0.0
    calls = bench.cancel_calls(events)
    throttled = sum(1 for c in calls if c.get("status") == 429)
    window = max(c["time"] for c in calls) - min(c["time"] for c in calls)
    rate = (n - 1) / window if window else 0.0
    per_100 = throttled / n * 100
    if target is None:
        rows.append(Row(label, f"{rate:.1f}/s, {share:.0%} of the ceiling (CPU-bound on this machine)"))
    elif hosts == 1:
        rows.append(Row(label, f"{rate:.1f}/s = {share:.0%} of the ceiling", f"≥ {target:.0%}", share >= target))
    else:
        rows.append(
            Row(
                label,
                f"{rate:.1f}/s = {share:.0%} of the ceiling, {per_100:.1f} 429s per 100",
                f"≥ {target:.0%}, ≤ 5 429s per 100",
                share >= target and per_100 <= 5,
            )
        )
    bench.settle(stack)
    bench.stop_hosts()
    bench.latency(REALISTIC_LATENCY)


def many_mailboxes(bench: Bench, rows: list[Row], host_json: Path | None = None, per_mailbox: int = 20) -> None:
    """20 mailboxes × 20 meetings at Graph's real latency: cancellations a second, the CPU each
    process used while the queue drained, and the host's CPU per cancellation against the CPU of
    the bare calls it needs (``bench.bare``) made in the same run."""
    pairs = bench.meetings(MAILBOXES, per_mailbox)
    n = len(pairs)
    events = {event for _, event in pairs}
    stack = Stack(bench, counted=False, host_json=host_json)
    stack.fill(pairs)
    host = stack.host()
    cpu_before = {"host": host.cpu(), "Azurite": process_tree_cpu(bench.azurite_pid), "bench": own_cpu()}
    bench.wait_applied(events)
    calls = bench.cancel_calls(events)
    window = max(c["time"] for c in calls) - min(c["time"] for c in calls)
    throttled = sum(1 for c in calls if c.get("status") == 429)
    bench.settle(stack)
    cpu_after = {"host": host.cpu(), "Azurite": process_tree_cpu(bench.azurite_pid), "bench": own_cpu()}
    used = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    bench.stop_hosts()
    bare = bare_calls(bench, MAILBOXES, per_mailbox)
    host_per = used["host"] / n
    ratio = host_per / bare
    rows.append(
        Row(
            f"worker, {len(MAILBOXES)} mailboxes × {per_mailbox}, Graph {REALISTIC_LATENCY[0] * 1000:.0f}–"
            f"{REALISTIC_LATENCY[1] * 1000:.0f} ms: cancellations a second",
            f"{(n - 1) / window:.1f}/s, {throttled} 429s",
        )
    )
    rows.append(
        Row(
            "… host CPU per cancellation ÷ CPU of the bare storage and Graph calls",
            f"{host_per * 1000:.1f} ms ÷ {bare * 1000:.1f} ms = {ratio:.2f}×",
            "≤ 1.3×",
            ratio <= 1.3,
        )
    )
    rows.append(
        Row(
            "… CPU used while the queue drained, per process",
            ", ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items())
            + " (bench = Graph sandbox, proxies, clients)",
        )
    )


def bare_calls(bench: Bench, mailboxes: list[str], per_mailbox: int) -> float:
    """CPU seconds per cancellation of ``bench.bare`` doing the same calls for the same shape."""
    pairs = bench.meetings(mailboxes, per_mailbox)
    stack = Stack(bench, counted=False)
    stack.fill(pairs)
    token = bench.sandbox.issue_token()["access_token"]
    job = {
        "connection": bench.azurite.connection_string,
        "queue": stack.queue_name,
        "table": f"bare{stack.suffix}",
        "graph": bench.sandbox.graph_base_url,
        "token": token,
        "count": len(pairs),
        "threads": 16,
    }
    command = [sys.executable, "-m", "bench.bare"]
    result = subprocess.run(command, input=json.dumps(job), capture_output=True, text=True, cwd=ROOT, check=True)
    report = json.loads(result.stdout)
    return float(report["cpu"]) / int(report["count"])


def end_to_end(bench: Bench, rows: list[Row]) -> None:
    """POST to cancelled, one at a time after the queue went idle, polling the status."""
    stack = Stack(bench, counted=False)
    host: HostProcess = stack.host()
    bench.sandbox.add_mailbox(ORGANIZER)
    idle = []
    for _ in range(8):
        time.sleep(2.5)  # the host's polling backs off to maxPollingInterval, as on an idle queue
        event = bench.sandbox.create_event(ORGANIZER, "idle", ["guest@fabrikam.com"])
        started = time.perf_counter()
        reply = host.session.post(f"{host.api}/cancellations", json={"organizer": ORGANIZER, "eventId": event})
        request_id = reply.json()["id"]
        while host.session.get(f"{host.api}/cancellations/{request_id}").json()["status"] != "cancelled":
            time.sleep(0.05)
        idle.append(time.perf_counter() - started)
    p50 = statistics.median(idle)
    rows.append(
        Row("end to end, idle queue p50 / p99", f"{p50:.2f} / {percentile(idle, 99):.2f} s", "p50 ≤ 3 s", p50 <= 3.0)
    )
    bench.stop_hosts()


__all__ = [
    "SHORT_LATENCY",
    "end_to_end",
    "intake",
    "many_mailboxes",
    "one_mailbox",
]
