"""The queue host keeps a running function's message invisible by renewing its lease, as the
Functions host does, and completes it with the renewed receipt."""

from __future__ import annotations

import threading
import time
import uuid

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient

import local_runner.queue_host as queue_host
from local_runner.azurite import Azurite
from local_runner.host import FunctionIndex, QueueListener
from meeting_cancel.config import QueueHostSettings, StorageSettings


def test_a_function_longer_than_the_lease_keeps_its_message_and_completes_it(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_host, "MESSAGE_LEASE_SECONDS", 2)
    monkeypatch.setattr(queue_host, "LEASE_RENEWAL_SECONDS", 0.5)
    queue_name = f"lease-{uuid.uuid4().hex[:8]}"
    deliveries: list[str] = []
    release = threading.Event()
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name=queue_name, connection="AzureWebJobsStorage")
    def slow(msg: func.QueueMessage) -> None:
        deliveries.append(msg.get_body().decode())
        release.wait(20)

    [function] = FunctionIndex.discover(app, {}).queues
    settings = QueueHostSettings(batch_size=1, new_batch_threshold=0, message_encoding="none")
    listener = QueueListener(function, StorageSettings(connection_string=azurite.connection_string), settings)
    listener.start_queues()
    queue = QueueClient.from_connection_string(azurite.connection_string, queue_name)
    queue.send_message("once")
    worker = threading.Thread(target=listener.drain_once)
    worker.start()
    try:
        time.sleep(5)  # more than twice the lease: without renewal the message would be visible again
        assert queue.peek_messages() == []
        assert deliveries == ["once"]
    finally:
        release.set()
        worker.join(timeout=30)
        listener.stop()
    assert queue.get_queue_properties().approximate_message_count == 0  # deleted with the renewed receipt
