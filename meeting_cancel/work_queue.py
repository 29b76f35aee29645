"""The work queue: sending requests, putting them back later, and moving unreadable ones aside.

Messages are plain-text JSON (host.json sets ``messageEncoding: none``), but base64 JSON written by
the Functions default encoding is read too (DESIGN 3.2).
"""

from __future__ import annotations

import logging

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient

from .config import Settings
from .errors import StorageUnavailable
from .storage import queue_client

log = logging.getLogger(__name__)
MAX_VISIBILITY_DELAY_SECONDS = 7 * 24 * 3600 - 60


class WorkQueue:
    def __init__(self, settings: Settings) -> None:
        self._queue: QueueClient = queue_client(settings.storage, settings.queue_name)
        self._poison: QueueClient = queue_client(settings.storage, settings.poison_queue_name)
        self.name = settings.queue_name

    def ensure_exists(self) -> None:
        for client in (self._queue, self._poison):
            try:
                client.create_queue()
            except ResourceExistsError:
                pass
            except AzureError as error:
                raise StorageUnavailable(str(error), operation="create queue") from error

    def send(self, text: str, *, delay_seconds: float = 0) -> None:
        delay = max(0, min(round(delay_seconds), MAX_VISIBILITY_DELAY_SECONDS))
        try:
            self._queue.send_message(text, visibility_timeout=delay or None)
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="enqueue") from error

    def send_to_poison(self, text: str) -> None:
        try:
            self._poison.send_message(text)
        except AzureError as error:
            raise StorageUnavailable(str(error), operation="move to poison") from error
