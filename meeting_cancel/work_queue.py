"""The work queue: the message format, sending requests, putting them back later, and moving
unreadable ones aside.

The format lives here alone. Messages are written as plain-text JSON (host.json sets
``messageEncoding: none``); messages written as base64 JSON, the Functions default, are read too
(DESIGN 3.2). The storage SDK is imported when the queue is first built, so the app indexes its
functions without loading it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .config import Settings
from .models import QueuedCancelRequest
from .records import StatusRecord

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)
MAX_VISIBILITY_DELAY_SECONDS = 7 * 24 * 3600 - 60
# The service's own note on its messages, beside the request's fields (never written by workflows):
# the record as stored, with its ETag, or ``{"etag": null}`` for "a record exists, read it".
RECORD_KEY = "record"


@dataclass(frozen=True)
class RecordNote:
    """What a message says about the request's status record, so the worker can skip reads.

    ``record``: the record as intake stored it, ETag included: the worker claims it with one
    conditional write, and reads the record only when that write fails (the record moved on).
    ``exists``: a record exists (a delayed copy the worker put back), so the worker reads it rather
    than trying to create it. Neither: a workflow's message, whose record the worker creates.
    """

    record: StatusRecord | None = None
    exists: bool = False


def encode(request: QueuedCancelRequest, note: RecordNote | None = None) -> str:
    """The message text for a request: compact JSON without the fields left out."""
    if note is None or (note.record is None and not note.exists):
        return request.model_dump_json(exclude_none=True)
    document = request.model_dump(mode="json", exclude_none=True)
    document[RECORD_KEY] = note.record.snapshot() if note.record is not None else {"etag": None}
    return json.dumps(document, separators=(",", ":"))


def take_note(document: dict[str, Any]) -> RecordNote:
    """Removes the service's note from a decoded message; a note that cannot be read is ignored
    (the worker then reads or creates the record, as for a workflow's message)."""
    value = document.pop(RECORD_KEY, None)
    if not isinstance(value, dict):
        return RecordNote()
    if value == {"etag": None}:
        return RecordNote(exists=True)
    try:
        return RecordNote(record=StatusRecord.from_snapshot(value))
    except (KeyError, TypeError, ValueError):
        return RecordNote(exists=True)


def decode(body: bytes) -> str | None:
    """The JSON text of a message written as plain text or base64; None when it is neither."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if text.startswith("{"):
        return text
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8").strip()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return decoded if decoded.startswith("{") else None


class WorkQueue:
    def __init__(self, settings: Settings) -> None:
        from .storage import queue_client

        self._queue: QueueClient = queue_client(settings.storage, settings.queue_name)
        self._poison: QueueClient = queue_client(settings.storage, settings.poison_queue_name)
        self.name = settings.queue_name

    def ensure_exists(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        from .storage import storage_errors

        for client in (self._queue, self._poison):
            with storage_errors("create queue"), contextlib.suppress(ResourceExistsError):
                client.create_queue()

    def send(self, request: QueuedCancelRequest, *, delay_seconds: float = 0, note: RecordNote | None = None) -> None:
        from .storage import storage_errors

        delay = max(0, min(round(delay_seconds), MAX_VISIBILITY_DELAY_SECONDS))
        with storage_errors("enqueue"):
            self._queue.send_message(encode(request, note), visibility_timeout=delay or None)

    def send_to_poison(self, body: bytes) -> None:
        """Moves a message aside as it arrived (undecodable bytes replaced), for a person to read."""
        from .storage import storage_errors

        with storage_errors("move to poison"):
            self._poison.send_message(body.decode("utf-8", errors="replace"))

    def poison_depth(self) -> int:
        """How many messages wait in the poison queue (the service's approximate count; 0 before the
        host created it). One storage transaction: the sweep reads it once a minute for the alert."""
        from azure.core.exceptions import ResourceNotFoundError

        from .storage import storage_errors

        with storage_errors("read poison queue"):
            try:
                return int(self._poison.get_queue_properties().approximate_message_count or 0)
            except ResourceNotFoundError:
                return 0
