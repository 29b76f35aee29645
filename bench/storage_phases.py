"""The storage phases: transactions per cancellation on each path and per meeting of an offboarding,
counted by kind at the proxies and divided by the design's minimum (``minimums``)."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .harness import ORGANIZER, Bench, HostProcess, Row, Stack
from .minimums import HTTP_PATH, OFFBOARDING, QUEUE_PATH, minimum
from .phases import MAILBOXES, batch_size


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
