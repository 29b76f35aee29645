"""The measured phases. Each starts the hosts it needs (``bench.host`` processes) on a queue and a
table of its own, measures, stops them, and appends its rows to the table."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
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
from .minimums import HTTP_PATH, OFFBOARDING, QUEUE_PATH, minimum

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


def storage_per_path(bench: Bench, rows: list[Row], host_json: Path | None = None) -> None:
    """Storage transactions per cancellation on each path, counted by the proxies, against the
    design's minimum (``minimums``): 20 mailboxes, so Graph's limit is not what paces the queue."""
    n = 100
    batch = batch_size(host_json)
    stack = Stack(bench, counted=True, host_json=host_json)
    host = stack.host()
    warm_up(bench, stack, host)
    pairs = bench.meetings(MAILBOXES, n // len(MAILBOXES))

    def post(pair: tuple[str, str]) -> None:
        reply = host.session.post(
            f"{host.api}/cancellations", json={"organizer": pair[0], "eventId": pair[1]}, timeout=30
        )
        assert reply.status_code == 202, reply.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, pairs))
    bench.wait_applied({event for _, event in pairs})
    bench.settle(stack)
    _path_rows(rows, "HTTP path", bench.storage_operations(), n, minimum(HTTP_PATH, batch))

    pairs = bench.meetings(MAILBOXES, n // len(MAILBOXES))
    bench.storage_operations()
    stack.fill(pairs)  # straight to Azurite: a workflow's send is not the service's cost
    bench.wait_applied({event for _, event in pairs})
    bench.settle(stack)
    _path_rows(rows, "queue path", bench.storage_operations(), n, minimum(QUEUE_PATH, batch))
    bench.stop_hosts()


def warm_up(bench: Bench, stack: Stack, host: HostProcess) -> None:
    """One request end to end, so the tables and queues exist and the token is cached: what a
    host does once per process is not counted per cancellation."""
    bench.sandbox.add_mailbox(ORGANIZER)
    event = bench.sandbox.create_event(ORGANIZER, "warm-up", ["guest@fabrikam.com"])
    reply = host.session.post(f"{host.api}/cancellations", json={"organizer": ORGANIZER, "eventId": event})
    assert reply.status_code == 202, reply.text
    bench.wait_applied({event})
    bench.settle(stack)
    bench.storage_operations()


def _path_rows(rows: list[Row], path: str, counts: Counter[str], n: int, floor: float) -> None:
    total = sum(counts.values()) / n
    ratio = total / floor
    detail = ", ".join(f"{kind} {count / n:.2f}" for kind, count in sorted(counts.items()))
    rows.append(
        Row(
            f"storage transactions per cancellation, {path} ÷ minimum {floor:.2f}",
            f"{total:.2f} = {ratio:.2f}×",
            "≤ 1.1×",
            ratio <= 1.1,
        )
    )
    rows.append(Row(f"… {path} by operation, per cancellation", detail))


def offboarding(bench: Bench, rows: list[Row], host_json: Path | None = None) -> None:
    """One batch of 200 meetings through ``POST /organizers/{upn}/cancellations``, every storage
    transaction counted until the last outcome is recorded, against the design's minimum."""
    n = 200
    organizer = "leaver@contoso.com"
    stack = Stack(bench, counted=True, host_json=host_json)
    host = stack.host()
    warm_up(bench, stack, host)
    events = {event for _, event in bench.meetings([organizer], n)}
    bench.storage_operations()
    reply = host.session.post(
        f"{host.api}/organizers/{organizer}/cancellations",
        json={"from": "2026-11-30T00:00:00Z", "to": "2026-12-02T00:00:00Z", "comment": "Offboarding"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=120,
    )
    assert reply.status_code == 202, reply.text
    bench.wait_applied(events)
    bench.settle(stack)
    counts = bench.storage_operations()
    floor = minimum(OFFBOARDING, batch_size(host_json), meetings=n)
    total = sum(counts.values()) / n
    rows.append(
        Row(
            f"offboarding, {n} meetings: storage transactions per meeting ÷ minimum {floor:.2f}",
            f"{total:.2f} = {total / floor:.2f}×",
            "≤ 1.2×",
            total / floor <= 1.2,
        )
    )
    rows.append(
        Row("… offboarding by operation, per meeting", ", ".join(f"{k} {c / n:.2f}" for k, c in sorted(counts.items())))
    )
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
    "offboarding",
    "one_mailbox",
    "storage_per_path",
]
