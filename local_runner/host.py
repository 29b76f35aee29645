"""A local function host: serves what ``function_app.app`` declares, with the host's semantics.

HTTP triggers under ``/api`` (as ``func start`` serves them, function keys not enforced locally),
and queue triggers with host.json's batchSize, newBatchThreshold, polling backoff up to
maxPollingInterval, visibilityTimeout, maxDequeueCount then ``<queue>-poison``, and messageEncoding.
A trigger or binding it does not implement stops start-up with its name.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import azure.functions.queue as func_queue
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage

from meeting_cancel.config import QueueHostSettings, StorageSettings
from meeting_cancel.storage import queue_client

log = logging.getLogger("local_runner.host")
SUPPORTED_OUTPUTS = {"http"}
MESSAGE_LEASE_SECONDS = 300
MIN_POLL_SECONDS = 0.1


class UnsupportedBinding(RuntimeError):
    """The app declares something this local host cannot run."""


@dataclass(frozen=True)
class HttpFunction:
    name: str
    methods: frozenset[str]
    route: str
    pattern: re.Pattern[str]
    auth_level: str
    argument: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class QueueFunction:
    name: str
    queue_name: str
    connection: str
    argument: str
    call: Callable[..., Any]


@dataclass
class FunctionIndex:
    http: list[HttpFunction] = field(default_factory=list)
    queues: list[QueueFunction] = field(default_factory=list)

    @classmethod
    def discover(cls, app: func.FunctionApp, settings: Mapping[str, str]) -> FunctionIndex:
        index = cls()
        for function in _functions_of(app):
            name = function.get_function_name()
            trigger = function.get_trigger().get_dict_repr()
            for binding in function.get_bindings():
                spec = binding.get_dict_repr()
                if spec["type"] != trigger["type"] and spec["type"] not in SUPPORTED_OUTPUTS:
                    raise UnsupportedBinding(
                        f"function {name!r}: binding type {spec['type']!r} is not implemented by the local host"
                    )
            call = function.get_user_function()
            if trigger["type"] == "httpTrigger":
                route = trigger.get("route") or name
                methods = frozenset(
                    str(getattr(m, "value", m)).upper() for m in (trigger.get("methods") or ["GET", "POST"])
                )
                auth = str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel") or "function"))
                index.http.append(
                    HttpFunction(name, methods, route, _route_pattern(route), auth, trigger["name"], call)
                )
            elif trigger["type"] == "queueTrigger":
                index.queues.append(
                    QueueFunction(
                        name,
                        resolve(trigger["queueName"], settings),
                        trigger.get("connection") or "AzureWebJobsStorage",
                        trigger["name"],
                        call,
                    )
                )
            else:
                raise UnsupportedBinding(
                    f"function {name!r}: trigger type {trigger['type']!r} is not implemented by the local host"
                )
        return index

    def match(self, method: str, path: str) -> tuple[HttpFunction, dict[str, str]] | str | None:
        """The function and route parameters for a request; 'method' when only the method is wrong."""
        wrong_method = False
        for function in self.http:
            found = function.pattern.match(path)
            if found:
                if method in function.methods:
                    return function, found.groupdict()
                wrong_method = True
        return "method" if wrong_method else None


_indexed: dict[int, list[Any]] = {}


def _functions_of(app: func.FunctionApp) -> list[Any]:
    """The app's functions; the SDK indexes an app only once per process, as the host does."""
    if id(app) not in _indexed:
        _indexed[id(app)] = list(app.get_functions())
    return _indexed[id(app)]


def resolve(value: str, settings: Mapping[str, str]) -> str:
    """Replaces %SETTING% binding expressions, failing with the setting's name when it is unset."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise UnsupportedBinding(f"binding expression %{name}% names a setting that is not set")
        return settings[name]

    return re.sub(r"%([^%]+)%", lookup, value)


def _route_pattern(route: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", route.strip("/")):
        if piece.startswith("{"):
            name = piece[1:-1].split(":")[0].rstrip("?")
            parts.append(f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("^" + "".join(parts) + "/?$")


def invocation_log(name: str, started: float, invocation_id: str, error: BaseException | None) -> None:
    duration = (time.perf_counter() - started) * 1000
    if error is None:
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)", name, invocation_id, duration)
    else:
        log.error(
            "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms): %s: %s",
            name,
            invocation_id,
            duration,
            type(error).__name__,
            error,
        )


class HttpHost:
    def __init__(
        self, index: FunctionIndex, *, host: str = "127.0.0.1", port: int = 7071, route_prefix: str = "api"
    ) -> None:
        self.index = index
        self.route_prefix = route_prefix.strip("/")
        self._server = ThreadingHTTPServer((host, port), _http_handler(self))
        self._server.daemon_threads = True
        self._serving = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HttpHost:
        self._serving = True
        threading.Thread(target=self._server.serve_forever, name="http-host", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._serving:
            self._server.shutdown()
            self._serving = False
        self._server.server_close()

    def handle(self, method: str, raw_url: str, headers: dict[str, str], body: bytes) -> func.HttpResponse:
        parts = urlsplit(raw_url)
        prefix = f"/{self.route_prefix}/"
        if not parts.path.startswith(prefix):
            return func.HttpResponse("Not found", status_code=404)
        matched = self.index.match(method, parts.path[len(prefix) :])
        if matched is None:
            return func.HttpResponse("Not found", status_code=404)
        if matched == "method":
            return func.HttpResponse("Method not allowed", status_code=405)
        assert not isinstance(matched, str)
        function, route_params = matched
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        request = func.HttpRequest(
            method=method,
            url=f"{self.base_url}{raw_url}",
            headers=headers,
            params=params,
            route_params=route_params,
            body=body,
        )
        invocation_id = str(uuid.uuid4())
        log.info(
            "Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s)",
            function.name,
            invocation_id,
        )
        started = time.perf_counter()
        try:
            response = function.call(**{function.argument: request})
        except Exception as error:  # the host answers 500 to an unhandled exception
            invocation_log(function.name, started, invocation_id, error)
            return func.HttpResponse("Internal Server Error", status_code=500)
        invocation_log(function.name, started, invocation_id, None)
        return cast(func.HttpResponse, response)


def _http_handler(host: HttpHost) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # answers go out at once, not after a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            log.debug(format, *args)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            response = host.handle(self.command, self.path, dict(self.headers.items()), body)
            payload = response.get_body() or b""
            self.send_response(response.status_code)
            headers = dict(response.headers.items())
            if response.mimetype and "content-type" not in {k.lower() for k in headers}:
                charset = f"; charset={response.charset}" if response.charset else ""
                headers["Content-Type"] = f"{response.mimetype}{charset}"
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def __getattr__(self, name: str) -> Any:
            """Every method reaches routing, which answers 405 for the ones a route does not take."""
            if name.startswith("do_"):
                return self._serve
            raise AttributeError(name)

    return Handler


class QueueListener:
    """Polls one queue and runs its function, with the host's retry and poison semantics."""

    def __init__(self, function: QueueFunction, storage: StorageSettings, host_settings: QueueHostSettings) -> None:
        self.function = function
        self.settings = host_settings
        self.queue: QueueClient = queue_client(storage, function.queue_name)
        self.poison: QueueClient = queue_client(storage, f"{function.queue_name}-poison")
        threshold = host_settings.new_batch_threshold
        self.new_batch_threshold = threshold if threshold is not None else host_settings.batch_size // 2
        self._pool = ThreadPoolExecutor(
            max_workers=host_settings.batch_size + self.new_batch_threshold, thread_name_prefix=f"queue-{function.name}"
        )
        self._in_flight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start_queues(self) -> None:
        """Creates the queue and its poison queue, as the host does on start-up."""
        for client in (self.queue, self.poison):
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()

    def start(self) -> QueueListener:
        self.start_queues()
        self._thread = threading.Thread(target=self._loop, name=f"poll-{self.function.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)

    def _loop(self) -> None:
        delay = MIN_POLL_SECONDS
        while not self._stop.is_set():
            with self._lock:
                busy = len(self._in_flight)
            if busy > self.new_batch_threshold:
                self._stop.wait(0.02)
                continue
            try:
                messages = self._receive()
            except AzureError as error:
                log.warning(
                    "queue %s: polling failed (%s); backing off", self.function.queue_name, type(error).__name__
                )
                messages = []
            if not messages:
                self._stop.wait(delay)
                delay = min(delay * 2, self.settings.max_polling_interval_seconds)
                continue
            delay = MIN_POLL_SECONDS
            for message in messages:
                future = self._pool.submit(self._process, message)
                with self._lock:
                    self._in_flight.add(future)
                future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)
        error = future.exception()
        if error is not None:
            log.error("queue %s: the host failed to handle a message: %r", self.function.queue_name, error)

    def _receive(self) -> list[QueueMessage]:
        pages = self.queue.receive_messages(
            messages_per_page=self.settings.batch_size,
            visibility_timeout=MESSAGE_LEASE_SECONDS,
            max_messages=self.settings.batch_size,
        )
        return list(pages)

    def drain_once(self) -> int:
        """Receives one batch and processes it before returning (for tests); the count handled."""
        messages = self._receive()
        futures = [self._pool.submit(self._process, m) for m in messages]
        for future in futures:
            future.result()
        return len(messages)

    def _process(self, message: QueueMessage) -> None:
        body = _message_body(message.content, self.settings.message_encoding)
        if body is None:
            log.error(
                "queue %s: message %s is not valid %s; moving it to poison",
                self.function.queue_name,
                message.id,
                self.settings.message_encoding,
            )
            self._to_poison(message)
            return
        invocation_id = str(uuid.uuid4())
        log.info(
            "Executing 'Functions.%s' (Reason='New queue message detected on '%s'.', Id=%s)",
            self.function.name,
            self.function.queue_name,
            invocation_id,
        )
        trigger = func_queue.QueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        started = time.perf_counter()
        try:
            self.function.call(**{self.function.argument: trigger})
        except Exception as error:
            invocation_log(self.function.name, started, invocation_id, error)
            self._failed(message)
            return
        invocation_log(self.function.name, started, invocation_id, None)
        self._complete(message)

    def _complete(self, message: QueueMessage) -> None:
        try:
            self.queue.delete_message(message)
        except AzureError as error:
            log.warning(
                "could not delete message %s (%s); it will be delivered again", message.id, type(error).__name__
            )

    def _failed(self, message: QueueMessage) -> None:
        try:
            if (message.dequeue_count or 0) >= self.settings.max_dequeue_count:
                log.warning(
                    "Message has reached MaxDequeueCount of %d. Moving message to queue '%s-poison'.",
                    self.settings.max_dequeue_count,
                    self.function.queue_name,
                )
                self._to_poison(message)
            else:
                self.queue.update_message(message, visibility_timeout=int(self.settings.visibility_timeout_seconds))
        except AzureError as error:
            log.warning("could not return message %s (%s); its lease will expire", message.id, type(error).__name__)

    def _to_poison(self, message: QueueMessage) -> None:
        self.poison.send_message(message.content)
        self.queue.delete_message(message)


def _message_body(content: Any, encoding: str) -> bytes | None:
    text = content if isinstance(content, str) else bytes(content).decode("utf-8", errors="replace")
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    return text.encode("utf-8")
