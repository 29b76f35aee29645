"""Graph's 4 concurrent requests per app and mailbox, held across instances: two app instances (each
its own ``Service``: clients, adaptive window and slot cache, as two hosts have) run the local queue
host on one queue and one Azurite, against a Graph sandbox that refuses a 5th concurrent call per
mailbox with 429 (``Limits.concurrent_per_mailbox``), so every moment above 4 shows as a 429.

Figures are printed (``-s``) and quoted in README's reliability section; the assertions are on
counts, never on time (speed targets live in ``make bench``)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import azure.functions as func
import pytest
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

import queue_trigger
from local_runner.azurite import Azurite
from local_runner.graph_sandbox import GraphSandbox, Limits
from local_runner.host import QueueFunction, QueueListener
from meeting_cancel import deliveries, worker
from meeting_cancel.concurrency import AdaptiveLimiter, MailboxLimit
from meeting_cancel.config import QueueHostSettings, Settings, StorageSettings
from meeting_cancel.mailbox_slots import MailboxSlots
from meeting_cancel.records import Status
from meeting_cancel.service import Service

from .conftest import ATTENDEE
from .support import isolated_values

# host.json's batch (8 + 4 in flight per instance), with short polling so a run ends promptly.
HOST = QueueHostSettings(
    max_dequeue_count=5,
    batch_size=8,
    new_batch_threshold=4,
    max_polling_interval_seconds=0.5,
    visibility_timeout_seconds=0,
    message_encoding="none",
)
GRAPH_LATENCY = (0.25, 0.6)  # realistic cancel latency, so Graph is the bound, not this machine's CPU


class Instance:
    """One app instance: its own Service and a queue host polling the shared queue."""

    def __init__(self, values: dict[str, str], *, shared_slots: bool = True) -> None:
        self.service = Service.build(Settings.from_environ(values))
        self.service.ensure_storage()
        if not shared_slots:  # the per-process window alone, as before the slots were wired
            self.service.limiter = MailboxLimit(self.service.limiter.local)
        function = QueueFunction(
            name="process_cancellation",
            queue_name=values["CANCEL_QUEUE_NAME"],
            connection="AzureWebJobsStorage",
            argument="msg",
            call=self._call,
        )
        self.listener = QueueListener(function, StorageSettings(connection_string=values["AzureWebJobsStorage"]), HOST)

    def _call(self, msg: func.QueueMessage) -> None:
        """What queue_trigger does, with this instance's Service instead of the process's."""
        worker.process(self.service, queue_trigger.delivery_of(msg))


@dataclass
class Run:
    cancellations: int
    seconds: float
    throttled: int
    peak: int

    @property
    def per_second(self) -> float:
        return self.cancellations / self.seconds


@contextmanager
def sandbox_with_limit() -> Iterator[GraphSandbox]:
    graph = GraphSandbox(seed=False).start()
    graph.state.limits = Limits(concurrent_per_mailbox=4, retry_after=1.0, latency_seconds=GRAPH_LATENCY)
    try:
        yield graph
    finally:
        graph.stop()


def run(azurite: Azurite, *, instances: int, mailboxes: int, meetings: int, shared_slots: bool = True) -> Run:
    """Queues ``meetings`` cancellations for each of ``mailboxes`` organizers, starts the instances
    on the one queue and waits until every meeting is cancelled; checks each was cancelled once."""
    with sandbox_with_limit() as sandbox:
        values = isolated_values(
            azurite,
            "scale",
            GRAPH_BASE_URL=sandbox.graph_base_url,
            IDENTITY_ENDPOINT=sandbox.identity_endpoint,
            IDENTITY_HEADER=sandbox.identity_header,
            GRAPH_TIMEOUT_SECONDS="10",
        )
        os.environ.update(values)  # azure-identity reads the identity endpoint from the environment
        organizers = [f"scale{n}@contoso.com" for n in range(mailboxes)]
        events: list[tuple[str, str]] = []
        for organizer in organizers:
            sandbox.add_mailbox(organizer)
            events += [(organizer, sandbox.create_event(organizer, f"m{i}", [ATTENDEE])) for i in range(meetings)]
        hosts = [Instance(values, shared_slots=shared_slots) for _ in range(instances)]
        queue = QueueClient.from_connection_string(values["AzureWebJobsStorage"], values["CANCEL_QUEUE_NAME"])
        for index, (organizer, event_id) in enumerate(events):
            queue.send_message(f'{{"id": "m-{index}", "organizer": "{organizer}", "eventId": "{event_id}"}}')

        started = time.monotonic()
        for host in hosts:
            host.listener.start()
        try:
            deadline = started + 300
            while sandbox.successful_cancels() < len(events) and time.monotonic() < deadline:
                time.sleep(0.02)
            seconds = time.monotonic() - started
        finally:
            for host in hosts:
                host.listener.stop()
        store = hosts[0].service.store
        for index, (_, event_id) in enumerate(events):
            assert sandbox.successful_cancels(event_id) == 1
            record = store.get(f"m-{index}")
            assert record is not None
            assert record.status == Status.CANCELLED, record
        throttled = sum(1 for call in sandbox.calls("cancel") if call.get("status") == 429)
        with sandbox.state.lock:  # counted at the sandbox as each call arrives, refused ones included
            peak = max(sandbox.state.peak_asked.values(), default=0)
        return Run(len(events), seconds, throttled, peak)


def report(label: str, result: Run, baseline: Run | None = None) -> str:
    line = (
        f"{label}: {result.cancellations} cancellations in {result.seconds:.1f} s = {result.per_second:.2f}/s, "
        f"{result.throttled} 429s ({100 * result.throttled / result.cancellations:.1f} per 100), "
        f"peak {result.peak} concurrent per mailbox at the sandbox"
    )
    if baseline is not None:
        line += f", {100 * result.per_second / baseline.per_second:.0f}% of one instance"
    print(line)
    return line


@pytest.mark.slow
def test_two_instances_on_one_mailbox_stay_within_four_concurrent_calls(azurite: Azurite) -> None:
    one = run(azurite, instances=1, mailboxes=1, meetings=100)
    two = run(azurite, instances=2, mailboxes=1, meetings=100)
    print()
    report("one mailbox, one instance", one)
    report("one mailbox, two instances", two, one)

    assert one.peak <= 4
    assert two.peak <= 4
    assert two.throttled <= 5  # per 100 cancellations


@pytest.mark.slow
def test_without_the_shared_slots_two_instances_would_hold_eight_calls_at_one_mailbox(azurite: Azurite) -> None:
    """The control, without timing: each process's own window grants 4 calls at one mailbox, so two
    instances hold 8 (the 429s Graph then answers were measured: README, reliability); in front of the
    shared slots the same two windows hold 4 between them."""
    table = TableClient.from_connection_string(azurite.connection_string, f"control{uuid.uuid4().hex[:12]}")
    table.create_table()
    try:
        for shared, expected in ((None, 8), (MailboxSlots(table), 4)):
            second = MailboxSlots(table) if shared is not None else None  # another instance: its own cache
            limits = [
                MailboxLimit(AdaptiveLimiter(maximum=4), shared),
                MailboxLimit(AdaptiveLimiter(maximum=4), second),
            ]
            with ExitStack() as held:
                granted = [
                    held.enter_context(limit.slot("control@contoso.com", max_wait=0.2)) == 0.0
                    for limit in limits
                    for _ in range(4)
                ]
                assert granted.count(True) == expected
    finally:
        table.delete_table()


@pytest.mark.slow
def test_many_mailboxes_go_faster_with_more_instances(azurite: Azurite) -> None:
    one = run(azurite, instances=1, mailboxes=20, meetings=8)
    two = run(azurite, instances=2, mailboxes=20, meetings=8)
    print()
    report("20 mailboxes, one instance", one)
    report("20 mailboxes, two instances", two, one)

    assert max(one.throttled, two.throttled) == 0
    assert two.peak <= 4


def test_a_dead_instances_slot_frees_when_its_lease_expires(azurite: Azurite) -> None:
    """An instance that died holding every slot of a mailbox (leases never given back) holds up a
    live instance only until the leases expire: the lease covers the Graph call, not a lifetime."""
    with sandbox_with_limit() as sandbox:
        sandbox.state.limits = Limits(concurrent_per_mailbox=4)  # no latency: calls end well within 0.5 s
        values = isolated_values(
            azurite,
            "dead",
            GRAPH_BASE_URL=sandbox.graph_base_url,
            IDENTITY_ENDPOINT=sandbox.identity_endpoint,
            IDENTITY_HEADER=sandbox.identity_header,
            GRAPH_TIMEOUT_SECONDS="0.5",  # leases of 2 × 0.5 s + 5 s
        )
        os.environ.update(values)
        organizer = "scale0@contoso.com"
        sandbox.add_mailbox(organizer)
        event_id = sandbox.create_event(organizer, "after the crash", [ATTENDEE])
        dead, live = Instance(values), Instance(values)
        slots = dead.service.limiter.shared
        assert slots is not None
        held = [slots.try_acquire(organizer) for _ in range(4)]  # then the instance dies
        assert all(held)

        queue = QueueClient.from_connection_string(values["AzureWebJobsStorage"], values["CANCEL_QUEUE_NAME"])
        queue.send_message(f'{{"id": "after-crash", "organizer": "{organizer}", "eventId": "{event_id}"}}')
        live.listener.drain_once()
        waiting = live.service.store.get("after-crash")
        assert waiting is not None
        assert waiting.status == Status.RETRYING  # no slot: nothing sent, the claim undone
        assert sandbox.calls("cancel") == []

        deadline = time.monotonic() + 30
        while sandbox.successful_cancels() == 0 and time.monotonic() < deadline:
            live.listener.drain_once()
            time.sleep(0.2)
        done = live.service.store.get("after-crash")
        assert done is not None
        assert done.status == Status.CANCELLED
        assert sandbox.successful_cancels(event_id) == 1
        live.listener.stop()
        dead.listener.stop()


def test_two_instances_racing_for_one_meeting_make_one_graph_call(azurite: Azurite) -> None:
    """Two requests for one meeting, each on its own instance at the same moment: the meeting's row
    is written with an ETag condition in the one table both share, so one of them follows."""
    with sandbox_with_limit() as sandbox:
        sandbox.state.limits = Limits(latency_seconds=(0.3, 0.3))
        values = isolated_values(
            azurite,
            "race",
            GRAPH_BASE_URL=sandbox.graph_base_url,
            IDENTITY_ENDPOINT=sandbox.identity_endpoint,
            IDENTITY_HEADER=sandbox.identity_header,
        )
        os.environ.update(values)
        organizer = "scale0@contoso.com"
        sandbox.add_mailbox(organizer)
        event_id = sandbox.create_event(organizer, "asked for twice", [ATTENDEE])
        instances = [Instance(values), Instance(values)]
        start = threading.Barrier(2)
        outcomes: dict[str, deliveries.Outcome] = {}

        def deliver(instance: Instance, request_id: str) -> None:
            body = f'{{"id": "{request_id}", "organizer": "{organizer}", "eventId": "{event_id}"}}'.encode()
            start.wait()
            outcomes[request_id] = worker.process(instance.service, deliveries.Delivery(body, request_id, 1))

        threads = [
            threading.Thread(target=deliver, args=(instance, f"instance-{n}")) for n, instance in enumerate(instances)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        assert sorted(outcomes.values()) == sorted([deliveries.Outcome.CANCELLED, deliveries.Outcome.REQUEUED])
        assert len(sandbox.calls("cancel")) == 1
        follower = next(
            request_id for request_id, outcome in outcomes.items() if outcome == deliveries.Outcome.REQUEUED
        )
        deadline = time.monotonic() + 20
        store = instances[1].service.store
        while (record := store.get(follower)) is not None and not record.status.final and time.monotonic() < deadline:
            instances[1].listener.drain_once()
            time.sleep(0.2)
        assert record is not None
        assert record.status == Status.CANCELLED
        assert record.follows is not None
        assert record.follows != follower
        assert sandbox.successful_cancels(event_id) == 1
