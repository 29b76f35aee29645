"""The sweep: queues the messages of accepted requests whose queue write failed or lost its
answer, so no accepted request depends on its caller retrying.

Intake writes a hand-over row (``service_rows``) only on that path; a timer runs ``run`` every
minute. For each row older than ``GRACE``:

* the request is still ``accepted``: its message may be missing, so it is sent again and the
  request is recorded ``queued`` (``lifecycle.confirm_queued``, ETag-conditional);
* anything else (claimed, retrying, final, gone): the message reached the worker or was re-sent;
  nothing to do.

Then the row is removed. A row whose work fails (storage down) stays for the next run.

Two sweeps at once (the Functions host runs one timer invocation across instances, "Timer
trigger for Azure Functions", Scale-out; two apps on one table would not share that lock) may both
send the message: the worker completes the second delivery of one tracking id as a duplicate,
without a second Graph call, and only one of them records ``queued``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from . import lifecycle, telemetry
from .errors import ConcurrentUpdate, StorageUnavailable
from .models import QueuedCancelRequest
from .records import Status
from .service_rows import UnqueuedEntry
from .work_queue import RecordNote, take_note

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
SCHEDULE = "0 * * * * *"  # NCRONTAB, every minute at second 0 (UTC)
GRACE = timedelta(minutes=1)  # a message whose answer was lost is usually delivered by then
MAX_ROWS_PER_RUN = 500


@dataclass(frozen=True)
class SweepReport:
    resent: int = 0
    settled: int = 0
    left: int = 0

    def __str__(self) -> str:
        return f"{self.resent} re-sent, {self.settled} already on their way, {self.left} left for the next run"


def run(service: Service) -> SweepReport:
    """One pass over the due hand-over rows."""
    resent = settled = left = 0
    for entry in service.store.unqueued_before(service.clock() - GRACE, MAX_ROWS_PER_RUN):
        try:
            if _sweep(service, entry):
                resent += 1
            else:
                settled += 1
        except StorageUnavailable as error:
            left += 1
            log.warning(
                "sweep: request %s left for the next run: %s",
                entry.request_id,
                error,
                extra={"request_id": entry.request_id},
            )
    return SweepReport(resent, settled, left)


def _sweep(service: Service, entry: UnqueuedEntry) -> bool:
    """Whether the message had to be sent again."""
    record = service.store.get(entry.request_id)
    resend = record is not None and record.status == Status.ACCEPTED
    if record is not None and resend:
        document = json.loads(entry.message)
        take_note(document)  # the hand-over kept intake's note; the re-send says "a record exists"
        service.queue.send(QueuedCancelRequest.model_validate(document), note=RecordNote(exists=True))
        # a worker claimed it, or another sweep confirmed it: the message is on the queue either way
        with contextlib.suppress(ConcurrentUpdate):
            service.store.replace(lifecycle.confirm_queued(record, now=service.clock()))
        log.warning(
            "sweep: request %s was accepted but maybe not queued; its message was sent again",
            record.id,
            extra={"request_id": record.id},
        )
    service.store.remove_unqueued(entry)
    return resend


def watch_poison(service: Service) -> int | None:
    """Reports the poison queue's depth (``telemetry.record_poison_depth``) so the alert sees every
    message there, also those the host moved after a crash or timeout on the last delivery, which
    no code of the app saw. None when storage did not answer: the next minute tries again."""
    try:
        depth = service.queue.poison_depth()
    except StorageUnavailable as error:
        log.warning("sweep: the poison queue's depth could not be read: %s", error)
        return None
    telemetry.record_poison_depth(depth)
    if depth:
        log.warning("%d message(s) wait in the poison queue %s", depth, service.settings.poison_queue_name)
    return depth
