"""Exchange Online's recipient rate limit, kept per mailbox so that notices wait instead of bouncing.

Each cancellation mails every attendee (rooms included) from the organizer's mailbox. Exchange
Online limits a mailbox to 10,000 recipients in any 24 hours ("Exchange Online limits", sending
limits: recipient rate limit); past it, messages bounce with a non-delivery report while the meeting
still leaves the calendar. The 30 messages a minute limit applies to SMTP client submission, not to
Graph, so it is not modelled here.

Sends are counted in hourly buckets. A send in the bucket starting at ``h`` is counted until
``h + 25 h``, so the rolling window is never underestimated (at worst a send waits an hour longer
than Exchange would make it). The arithmetic is pure (``used``, ``earliest_send``, ``plan``); the
store below keeps the buckets in Table Storage with ETag-conditional increments, shared by every
instance, by single requests and by batches.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from .errors import StorageUnavailable
from .storage import storage_errors

DEFAULT_RECIPIENTS_PER_DAY = 10_000
MAX_WRITE_ATTEMPTS = 40  # optimistic writes to one row; each conflict means another send was counted
BUCKET = timedelta(hours=1)
COUNTED_FOR = timedelta(hours=25)  # 24 h after the last moment a bucket can hold, so never early
Buckets = Mapping[datetime, int]


def bucket_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def used(buckets: Buckets, now: datetime) -> int:
    """Recipients still counted against the mailbox at ``now``."""
    return sum(count for start, count in buckets.items() if start + COUNTED_FOR > now)


def earliest_send(buckets: Buckets, recipients: int, limit: int, now: datetime) -> datetime:
    """When a notice to ``recipients`` people may go out: ``now`` when it fits, else when enough
    earlier sends have left the window. A notice larger than the whole limit never fits."""
    if recipients > limit:
        raise ValueError(f"{recipients} recipients exceed the mailbox's limit of {limit} a day")
    over = used(buckets, now) + recipients - limit
    if over <= 0:
        return now
    for start in sorted(b for b in buckets if b + COUNTED_FOR > now):
        over -= buckets[start]
        if over <= 0:
            return start + COUNTED_FOR
    return now  # unreachable: every counted bucket has left the window by then


def plan(
    buckets: Buckets, recipients: Iterable[int], limit: int, now: datetime, *, seconds_per_send: float = 0.0
) -> list[datetime]:
    """When each notice, in order, is expected to go out: the preview's ``estimatedCompletion`` is
    the last of them. ``seconds_per_send`` spaces sends for Graph's own pace."""
    simulated = dict(buckets)
    moment = now
    times = []
    for count in recipients:
        moment = earliest_send(simulated, count, limit, moment)
        times.append(moment)
        key = bucket_of(moment)
        simulated[key] = simulated.get(key, 0) + count
        moment += timedelta(seconds=seconds_per_send)
    return times


@dataclass(frozen=True)
class Reservation:
    mailbox_key: str
    bucket: datetime
    recipients: int


@dataclass
class RecipientBudget:
    """The buckets in Table Storage: one partition per mailbox (hashed), one row per hour."""

    table: TableClient
    limit: int = DEFAULT_RECIPIENTS_PER_DAY
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    pause: Callable[[int], None] = field(default=lambda attempt: time.sleep(random.uniform(0, 0.005 * attempt)))

    def reserve(self, mailbox: str, recipients: int) -> Reservation | datetime:
        """Counts the notice now if it fits; otherwise the moment it will fit (nothing counted)."""
        key = budget_key(mailbox)
        for attempt in range(MAX_WRITE_ATTEMPTS):
            now = self.clock()
            rows = self._buckets(key)
            due = earliest_send({start: count for start, (count, _) in rows.items()}, recipients, self.limit, now)
            if due > now:
                return due
            bucket = bucket_of(now)
            count, etag = rows.get(bucket, (0, None))
            if self._write(key, bucket, count + recipients, etag):
                return Reservation(key, bucket, recipients)
            self.pause(attempt)
        raise StorageUnavailable("the recipient budget kept changing", operation="reserve recipients")

    def refund(self, reservation: Reservation) -> None:
        """Gives back a reservation whose notice was certainly not sent."""
        for attempt in range(MAX_WRITE_ATTEMPTS):
            rows = self._buckets(reservation.mailbox_key)
            count, etag = rows.get(reservation.bucket, (0, None))
            if etag is None:
                return
            remaining = max(0, count - reservation.recipients)
            if self._write(reservation.mailbox_key, reservation.bucket, remaining, etag):
                return
            self.pause(attempt)

    def usage(self, mailbox: str) -> dict[datetime, int]:
        return {start: count for start, (count, _) in self._buckets(budget_key(mailbox)).items()}

    def _buckets(self, key: str) -> dict[datetime, tuple[int, str | None]]:
        oldest = bucket_of(self.clock() - COUNTED_FOR)
        with _translated("read recipient budget"):
            rows = self.table.query_entities(
                "PartitionKey eq @key and RowKey ge @oldest", parameters={"key": key, "oldest": _row(oldest)}
            )
            return {_start(str(r["RowKey"])): (int(r["recipients"]), str(r.metadata["etag"])) for r in rows}

    def _write(self, key: str, bucket: datetime, recipients: int, etag: str | None) -> bool:
        entity = {"PartitionKey": key, "RowKey": _row(bucket), "recipients": recipients}
        try:
            with _translated("count recipients"):
                if etag is None:
                    self.table.create_entity(entity)
                else:
                    self.table.update_entity(
                        entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                    )
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        return True


def budget_key(mailbox: str) -> str:
    return "recipients-" + hashlib.sha256(mailbox.strip().lower().encode()).hexdigest()[:40]


def _row(bucket: datetime) -> str:
    return bucket.strftime("%Y%m%d%H")


def _start(row: str) -> datetime:
    return datetime.strptime(row, "%Y%m%d%H").replace(tzinfo=UTC)


def _translated(operation: str) -> AbstractContextManager[None]:
    """Storage failures as ``StorageUnavailable``; the outcomes the caller handles pass through."""
    return storage_errors(operation, passing=(ResourceExistsError, ResourceModifiedError, ResourceNotFoundError))
