"""Telemetry an operator can use: metrics, one trace per request, and log lines that name the request.

* **Configured on first invocation** (``service.current``), not at import: azure-monitor-opentelemetry
  is heavy to import and slow to configure (Azure/azure-sdk-for-python#33671), and Flex Consumption
  gives app start-up 30 s. **Off** when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is not set: every
  ``record_*`` returns at once and nothing of OpenTelemetry is imported.
* **Authenticated with the managed identity**; local authentication is off on the Application
  Insights resource. The app setting ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING``
  (``Authorization=AAD;ClientId=<client id>``) is read by the exporter itself
  (azure-monitor-opentelemetry-exporter ``export/_base.py``, ``_get_authentication_credential``:
  no ``credential`` argument and the setting present with ``Authorization=AAD`` gives
  ``ManagedIdentityCredential(client_id=...)``); without the setting the app passes a
  ``ManagedIdentityCredential`` for ``AZURE_CLIENT_ID``.
* **Metrics** (names and attributes are the contract with ``infra/app/telemetry-queries.json``,
  kept by tests/unit/test_infra_telemetry.py): ``meeting_cancel.outcomes`` {status, code},
  ``meeting_cancel.graph.duration`` ms {operation, status}, ``meeting_cancel.graph.throttled``
  {mailbox_hash}, ``meeting_cancel.messages.poisoned`` {reason}, ``meeting_cancel.recipients.used``
  {mailbox_hash}. Mailboxes appear only as a hash.
* **Logs**: the Python worker forwards only a record's formatted message to the host, not its
  ``extra=`` fields (azure-functions-python-worker ``dispatcher.py`` ``on_logging``; issue #1327), so
  ``RequestIdInText`` puts ``request <id>`` into the text of every line that carries a
  ``request_id``; the OpenTelemetry log exporter keeps the ``extra=`` fields as custom dimensions.
  Once it is configured, ``meeting_cancel``'s lines go to Application Insights through it alone
  (not also through the host), so no line is stored twice.
* **Traces**: intake writes the W3C ``traceparent`` of the HTTP request into the queue message (or
  keeps one a workflow wrote); the worker continues that trace (``continue_trace``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .models import TRACEPARENT

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)
METER = "meeting_cancel"
LOGGERS = ("meeting_cancel", "cancel_function", "queue_trigger", "retention_function", "sweep_timer")
AUTH_SETTING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.configured = False
        self.instruments: dict[str, Any] = {}
        self.tracer: Any = None


_state = _State()


def mailbox_hash(mailbox: str) -> str:
    return hashlib.sha256(mailbox.strip().lower().encode()).hexdigest()[:16]


def configure(settings: Settings) -> None:
    """Once per process: Azure Monitor when a connection string is set, else nothing."""
    with _state.lock:
        if _state.configured:
            return
        _state.configured = True
    if not settings.telemetry_connection_string:
        return
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry import metrics, trace

        options: dict[str, Any] = {"connection_string": settings.telemetry_connection_string, "logger_name": LOGGERS[0]}
        if not os.environ.get(AUTH_SETTING):
            from azure.identity import ManagedIdentityCredential

            options["credential"] = ManagedIdentityCredential(client_id=settings.azure_client_id)
        configure_azure_monitor(**options)
        use(metrics.get_meter_provider(), trace.get_tracer_provider())
        # The exporter now sends the app's lines with their fields; passed on to the worker's root
        # handler too, the host would send each one to Application Insights a second time.
        logging.getLogger(LOGGERS[0]).propagate = False
    except Exception as error:  # telemetry must never stop the app from cancelling meetings
        log.error("telemetry is off: Azure Monitor could not be configured: %s: %s", type(error).__name__, error)


def use(meter_provider: Any, tracer_provider: Any) -> None:
    """Records through these providers from now on (``configure``; tests pass in-memory ones)."""
    meter = meter_provider.get_meter(METER)
    with _state.lock:
        _state.configured = True
        _state.instruments = {
            "outcomes": meter.create_counter("meeting_cancel.outcomes", unit="1", description="final outcomes"),
            "duration": meter.create_histogram(
                "meeting_cancel.graph.duration", unit="ms", description="Graph call latency"
            ),
            "throttled": meter.create_counter("meeting_cancel.graph.throttled", unit="1", description="Graph 429/503"),
            "poisoned": meter.create_counter("meeting_cancel.messages.poisoned", unit="1", description="poisoned"),
            "poison_depth": meter.create_gauge(
                "meeting_cancel.poison.depth", unit="1", description="messages in the poison queue"
            ),
            "recipients": meter.create_counter(
                "meeting_cancel.recipients.used", unit="1", description="recipients of cancellation notices"
            ),
        }
        _state.tracer = tracer_provider.get_tracer(METER)


def reset() -> None:
    """Forgets the providers (tests)."""
    with _state.lock:
        _state.configured = False
        _state.instruments = {}
        _state.tracer = None


def _add(name: str, value: float, attributes: dict[str, str]) -> None:
    instrument = _state.instruments.get(name)
    if instrument is None:
        return
    if name == "duration":
        instrument.record(value, attributes)
    elif name == "poison_depth":
        instrument.set(value, attributes)
    else:
        instrument.add(value, attributes)


def record_outcome(status: str, code: str) -> None:
    _add("outcomes", 1, {"status": status, "code": code})


def record_graph_call(operation: str, status: str, milliseconds: float) -> None:
    _add("duration", milliseconds, {"operation": operation, "status": status})


def graph_answered(operation: str, url: str, status: str, milliseconds: float, *, throttled: bool) -> None:
    """One Graph HTTP call: its latency by operation (``graph``'s name for it) and status, and whether
    Graph throttled it (429, or 503 with Retry-After: ``graph.classify``)."""
    if not _state.instruments:
        return
    record_graph_call(operation, status, milliseconds)
    if throttled:  # the URL is read only then, for the mailbox
        _, mailbox = graph_operation("GET", url)
        if mailbox:
            record_throttled(mailbox)


def graph_operation(method: str, url: str) -> tuple[str, str | None]:
    """The operation a Graph URL names (cancel, get, instances, calendarView, findByICalUId, user),
    and the mailbox it addresses."""
    from urllib.parse import unquote, urlsplit

    segments = [unquote(part) for part in urlsplit(url).path.split("/") if part]
    mailbox = segments[segments.index("users") + 1] if "users" in segments[:-1] else None
    last = segments[-1] if segments else ""
    if last in ("cancel", "instances", "calendarView"):
        return last, mailbox
    if "events" in segments:
        return ("get" if segments[-2] == "events" else "events") if method == "GET" else method.lower(), mailbox
    return ("user" if segments[-2:-1] == ["users"] else last or "graph"), mailbox


def record_throttled(mailbox: str) -> None:
    _add("throttled", 1, {"mailbox_hash": mailbox_hash(mailbox)})


def record_poisoned(reason: str) -> None:
    _add("poisoned", 1, {"reason": reason})


def record_poison_depth(messages: int) -> None:
    """Messages in the poison queue, however they got there: the worker's own moves are counted by
    ``record_poisoned``; the host's (a crash or timeout on the last delivery) only show here."""
    _add("poison_depth", messages, {})


def record_recipients(mailbox: str, count: int) -> None:
    """Recipients a cancellation notice goes to, against Exchange Online's daily limit per mailbox."""
    _add("recipients", count, {"mailbox_hash": mailbox_hash(mailbox)})


# ----- traces
def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def current_traceparent(incoming: str | None) -> str:
    """The traceparent to put in a queue message: the active span's when telemetry is on, else the
    caller's (the HTTP request's ``traceparent`` header), else a new trace."""
    if _state.tracer is not None:
        from opentelemetry.propagate import inject

        carrier: dict[str, str] = {}
        inject(carrier)
        if TRACEPARENT.fullmatch(carrier.get("traceparent", "")):
            return carrier["traceparent"]
    if incoming and TRACEPARENT.fullmatch(incoming.strip().lower()):
        return incoming.strip().lower()
    return new_traceparent()


@contextlib.contextmanager
def continue_trace(name: str, traceparent: str | None, **attributes: str) -> Iterator[None]:
    """A span that continues the trace of ``traceparent`` (the queue message's), when telemetry is on."""
    if _state.tracer is None:
        yield
        return
    from opentelemetry.propagate import extract

    parent = extract({"traceparent": traceparent}) if traceparent else None
    with _state.tracer.start_as_current_span(name, context=parent, attributes=attributes):
        yield


# ----- logs
class RequestIdInText(logging.Filter):
    """Puts ``request <id>`` into the text of a line that carries ``request_id`` but does not say it."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = getattr(record, "request_id", None)
        if isinstance(request_id, str) and request_id and f"request {request_id}" not in record.getMessage():
            record.msg = f"request {request_id.replace('%', '%%')}: {record.msg}"
        return True


def install_log_filter() -> None:
    """On every module logger of the app that exists now (a logger filter does not apply to children)."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in LOGGERS]
    for name in {*LOGGERS, *names}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RequestIdInText) for f in logger.filters):
            logger.addFilter(RequestIdInText())
