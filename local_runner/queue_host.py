"""Queue triggers with the host's semantics read from host.json: batchSize, newBatchThreshold,
polling backoff up to maxPollingInterval, visibilityTimeout after a failure, maxDequeueCount then
``<queue>-poison``, and messageEncoding (a message that cannot be decoded goes to poison at once).

While a function runs, its message's lease is renewed, as the host does (Azure/azure-webjobs-sdk
``QueueListener``: a 10-minute visibility, updated on a timer for the duration of the execution).
Locally the lease is 30 s, renewed every 10 s: after a crash the messages that were being processed
come back within 30 s instead of 10 minutes."""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import azure.functions.queue as func_queue
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueMessage

from meeting_cancel.config import QueueHostSettings, StorageSettings
from meeting_cancel.storage import queue_client

from .index import QueueFunction, invocation_log
from .invocation import arguments

log = logging.getLogger("local_runner.host")
MESSAGE_LEASE_SECONDS = 30
LEASE_RENEWAL_SECONDS = 10
MIN_POLL_SECONDS = 0.1


class Leases:
    """Keeps in-flight messages invisible while their function runs."""

    def __init__(self, queue: QueueClient, seconds: int = MESSAGE_LEASE_SECONDS) -> None:
        self.queue = queue
        self.seconds = seconds
        self._held: dict[str, tuple[QueueMessage, threading.Lock, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="queue-leases", daemon=True)
        self._thread.start()

    def hold(self, message: QueueMessage) -> None:
        with self._lock:
            self._held[message.id] = (message, threading.Lock(), time.monotonic() + LEASE_RENEWAL_SECONDS)

    @contextlib.contextmanager
    def finishing(self, message: QueueMessage) -> Iterator[None]:
        """No renewal runs while the message is completed, returned or poisoned."""
        with self._lock:
            held = self._held.pop(message.id, None)
        if held is None:
            yield
            return
        with held[1]:
            yield

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _renew(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            with self._lock:
                due = [(m, lock) for m, lock, at in self._held.values() if at <= now]
            for message, lock in due:
                with lock, contextlib.suppress(AzureError):
                    with self._lock:
                        if message.id not in self._held:
                            continue
                    renewed = self.queue.update_message(
                        message.id, pop_receipt=message.pop_receipt, visibility_timeout=self.seconds
                    )
                    message.pop_receipt = renewed.pop_receipt
                    with self._lock:
                        if message.id in self._held:
                            self._held[message.id] = (message, lock, now + LEASE_RENEWAL_SECONDS)


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
        self._leases = Leases(self.queue)
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
        self._leases.stop()

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
        self._leases.hold(message)
        outcome: Callable[[QueueMessage], None] = self._complete
        try:
            outcome = self._run(message)
        finally:
            with self._leases.finishing(message):
                outcome(message)

    def _run(self, message: QueueMessage) -> Callable[[QueueMessage], None]:
        """Runs the function; what to do with the message afterwards."""
        body = _message_body(message.content, self.settings.message_encoding)
        if body is None:
            log.error(
                "queue %s: message %s is not valid %s; moving it to poison",
                self.function.queue_name,
                message.id,
                self.settings.message_encoding,
            )
            return self._to_poison
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
            f = self.function
            f.call(**arguments(f.call, f.argument, trigger, function_name=f.name, invocation_id=invocation_id))
        except Exception as error:
            invocation_log(self.function.name, started, invocation_id, error)
            return self._failed
        invocation_log(self.function.name, started, invocation_id, None)
        return self._complete

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
        try:
            self.poison.send_message(message.content)
            self.queue.delete_message(message)
        except AzureError as error:
            log.warning(
                "could not poison message %s (%s); it will be delivered again", message.id, type(error).__name__
            )


def _message_body(content: Any, encoding: str) -> bytes | None:
    text = content if isinstance(content, str) else bytes(content).decode("utf-8", errors="replace")
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    return text.encode("utf-8")
