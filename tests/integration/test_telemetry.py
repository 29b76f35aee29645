"""Telemetry through the local host: the traceparent from the HTTP request through the queue message
to the worker's span, the metrics the alerts and workbook read, and log lines that name the request
in their text. OpenTelemetry's own in-memory reader and exporter stand in for Azure Monitor."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from local_runner.graph_sandbox import Fault, GraphSandbox
from meeting_cancel import service, sweep, telemetry

from .conftest import ORGANIZER
from .support import AppUnderTest

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Collected:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        telemetry.use(MeterProvider(metric_readers=[self.reader]), tracer_provider)

    def points(self, name: str) -> list[tuple[dict[str, Any], float]]:
        data = self.reader.get_metrics_data()
        found = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            value = getattr(point, "value", None)
                            count = float(value if value is not None else getattr(point, "count", 0))
                            found.append((dict(point.attributes or {}), count))
        return found


@pytest.fixture
def collected() -> Iterator[Collected]:
    yield Collected()
    telemetry.reset()


def test_the_trace_goes_from_the_http_request_through_the_queue_to_the_worker(
    app: AppUnderTest, collected: Collected, meeting: str
) -> None:
    request_id = app.post({"organizer": ORGANIZER, "eventId": meeting}, headers={"traceparent": TRACEPARENT}).body["id"]
    [message] = app.queue.peek_messages()
    assert json.loads(message.content)["traceparent"].split("-")[1] == TRACE_ID
    app.drain()
    [span] = [s for s in collected.spans.get_finished_spans() if s.name == "process cancellation"]
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.attributes is not None
    assert span.attributes["request_id"] == request_id


def test_every_child_of_an_offboarding_batch_continues_the_batchs_trace(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    for title in ("Weekly", "Review"):
        sandbox.create_event(ORGANIZER, title, ["alex.wilber@contoso.com"], start="2026-12-02T09:00:00")
    window = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}
    answer = app.request(
        "POST", f"/api/organizers/{ORGANIZER}/cancellations", window, headers={"traceparent": TRACEPARENT}
    )
    assert answer.status == 202
    messages = app.queue.peek_messages(max_messages=32)
    assert len(messages) == 2
    assert {json.loads(m.content)["traceparent"].split("-")[1] for m in messages} == {TRACE_ID}


def test_the_message_continues_the_functions_hosts_own_activity_for_the_request(
    app: AppUnderTest, meeting: str
) -> None:
    """The host's Request telemetry and the worker's span are one trace: the message carries the
    trace context the host passes in ``context`` (a child of the caller's), not a trace of its own."""
    app.post({"organizer": ORGANIZER, "eventId": meeting}, headers={"traceparent": TRACEPARENT})
    [message] = app.queue.peek_messages()
    _, trace_id, span_id, _ = json.loads(message.content)["traceparent"].split("-")
    assert trace_id == TRACE_ID
    assert span_id != TRACEPARENT.split("-")[2]  # the host's span for this request, not the caller's


def test_a_workflow_message_without_traceparent_starts_a_trace_and_one_with_it_continues(
    app: AppUnderTest, collected: Collected, sandbox: GraphSandbox
) -> None:
    first = sandbox.create_event(ORGANIZER, "First", ["alex.wilber@contoso.com"])
    second = sandbox.create_event(ORGANIZER, "Second", ["alex.wilber@contoso.com"])
    app.put_message({"id": "wf-1", "organizer": ORGANIZER, "eventId": first})
    app.put_message({"id": "wf-2", "organizer": ORGANIZER, "eventId": second, "traceparent": TRACEPARENT})
    app.drain()
    spans = {s.attributes["request_id"]: s for s in collected.spans.get_finished_spans() if s.attributes}
    assert f"{spans['wf-2'].context.trace_id:032x}" == TRACE_ID
    assert f"{spans['wf-1'].context.trace_id:032x}" != TRACE_ID


def test_metrics_carry_what_the_alerts_and_workbook_query(
    app: AppUnderTest, collected: Collected, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=429, code="ApplicationThrottled", retry_after=0.2))
    app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.put_message("not json")
    app.drain(wait_for_delayed=3.0)
    assert ({"status": "cancelled", "code": "cancelled"}, 1) in collected.points("meeting_cancel.outcomes")
    durations = collected.points("meeting_cancel.graph.duration")
    assert {(a["operation"], a["status"]) for a, _ in durations} >= {("cancel", "429"), ("cancel", "202")}
    [(throttled, count)] = collected.points("meeting_cancel.graph.throttled")
    assert throttled == {"mailbox_hash": telemetry.mailbox_hash(ORGANIZER)}
    assert count == 1
    assert ORGANIZER not in json.dumps(collected.points("meeting_cancel.graph.throttled"))
    assert ({"reason": "unreadableMessage"}, 1) in collected.points("meeting_cancel.messages.poisoned")


def test_every_log_line_about_a_request_names_it_in_its_text(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=2))
    caplog.set_level(logging.INFO)
    body = {"organizer": ORGANIZER, "eventId": meeting}
    request_id = app.post(body, headers={"Idempotency-Key": "telemetry-1"}).body["id"]
    assert app.post(body, headers={"Idempotency-Key": "telemetry-1"}).body["id"] == request_id  # a replay
    app.drain()
    about = [r for r in caplog.records if getattr(r, "request_id", None) == request_id]
    assert len(about) >= 6  # accepted, replayed, two transient failures, verify, the final status
    for record in about:
        assert f"request {request_id}" in record.getMessage(), record.getMessage()
    # the other way round: a line that names the request carries it as a field too (queries by either)
    naming = [r for r in caplog.records if r.name.split(".")[0] in telemetry.LOGGERS and request_id in r.getMessage()]
    assert [r.getMessage() for r in naming if getattr(r, "request_id", None) != request_id] == []
    messages = [r.getMessage() for r in about]
    assert any("request cancelled" in m for m in messages), "the final-status line"
    assert any("idempotent replay" in m for m in messages), "the replay"
    assert any(m.endswith(": cancelled") and "message " in m for m in messages), "each delivery's outcome"


def test_the_poison_queue_depth_is_reported_however_a_message_got_there(
    app: AppUnderTest, collected: Collected
) -> None:
    """The host moves a message to poison itself when an instance dies on its last delivery; no
    code of the app sees that, so the sweep reads the queue's depth each minute for the alert."""
    current = service.current()
    assert sweep.watch_poison(current) == 0
    app.poison.send_message("moved by the host: the instance died on the message's last delivery")
    app.put_message("not json")  # moved by the worker
    app.drain()

    assert sweep.watch_poison(current) == 2
    assert collected.points("meeting_cancel.poison.depth") == [({}, 2.0)]


CONFIGURE = """
import json, logging, os
from meeting_cancel import telemetry
from meeting_cancel.config import Settings

base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
telemetry.configure(Settings.from_environ(base))
result = {"off": telemetry._state.tracer is None and not telemetry._state.instruments}
telemetry.reset()
connection = "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:9/"
telemetry.configure(Settings.from_environ({**base, "APPLICATIONINSIGHTS_CONNECTION_STRING": connection}))
app_logger = logging.getLogger("meeting_cancel")
result.update(
    on=telemetry._state.tracer is not None and "outcomes" in telemetry._state.instruments,
    exporter_handlers=[type(h).__name__ for h in app_logger.handlers],
    propagates=app_logger.propagate,
)
print(json.dumps(result), flush=True)
os._exit(0)  # no flush to the dead endpoint at exit
"""


def test_configure_is_off_without_a_connection_string_and_with_one_sends_each_line_once() -> None:
    """The real distro, in a process of its own (it sets global providers): metrics and traces on,
    the app's lines exported with their fields and not also passed to the worker's root handler
    (which forwards them to the host, and the host to Application Insights a second time)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    done = subprocess.run(
        [sys.executable, "-c", CONFIGURE], capture_output=True, text=True, timeout=120, env=environment, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["off"] is True
    assert result["on"] is True
    assert "LoggingHandler" in result["exporter_handlers"]
    assert result["propagates"] is False
