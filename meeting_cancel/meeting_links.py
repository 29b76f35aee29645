"""One cancellation per meeting, whoever asks: a row per meeting names the request that owns its
cancellation, and every other request for that meeting follows the owner instead of calling Graph.

Tracking ids make one request's deliveries call Graph once; this makes one meeting's requests call
Graph once, whether the second one came from another caller, a caller retrying without a key, the
queue or an offboarding batch. A second cancel is never harmless: real Graph answers it
``ErrorItemNotFound`` although the meeting was cancelled, and a service that applied both would
send every attendee the notice twice.

* **The key** is (organizer, Graph event id): the organizer lower-cased and trimmed as the request
  names it. A mailbox named once by userPrincipalName and once by object id gives two keys;
  resolving one into the other would cost a directory read (and ``User.Read.All``) on every
  request, so it is not done: callers should name organizers one way. Requests that name the
  meeting by iCalUId or by occurrence are keyed once resolved to the Graph id.
* **Taking the meeting** is an ETag-conditional write naming the request: an insert when no row
  exists, otherwise a replace with the ETag just read. It is made before every Graph cancel, by
  the owner too, so two requests racing for one meeting (two workers, two instances) cannot both
  succeed, and an owner coming back from a final status (an operator's retry) and a request taking
  over from it at the same moment cannot both go on to Graph: one write fails and that one follows.
* Rows hold the request id alone; the key is a hash, so no address or event id is stored here.
  They live in the coordination table beside the mailbox slots (``service.coordination_table``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from . import steps
from .errors import ConcurrentUpdate
from .storage import storage_errors

if TYPE_CHECKING:
    from .records import StatusRecord
    from .service import Service

ROW = "meeting"
TAKE_TRIES = 4
_HANDLED = (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError)


@dataclass(frozen=True)
class Mine:
    """This request holds the meeting: it may call Graph."""


@dataclass(frozen=True)
class Theirs:
    """Another request holds the meeting; ``etag`` is the row as read, for a conditional take-over,
    ``since`` when it was written (the service's own timestamp)."""

    owner: str
    etag: str
    since: datetime | None


Taken = Mine | Theirs


@dataclass(frozen=True)
class Held:
    """This request holds the meeting now. ``took_over``: from an owner that failed or vanished;
    ``doubt``: that owner may have sent its cancel, so the event is read before any cancel."""

    took_over: bool = False
    doubt: bool = False


def hold(service: Service, record: StatusRecord, event_id: str) -> Held | steps.Share | steps.Wait | None:
    """Holds the meeting for the request, or says what to do about the request holding it
    (``steps.after_owner``); None when the row kept changing under us (come back later)."""
    meetings = service.meetings
    for _ in range(TAKE_TRIES):
        taken = meetings.take(record.organizer, event_id, record.id)
        if isinstance(taken, Mine):
            return Held()
        owner = service.store.get(taken.owner)
        decision = steps.after_owner(taken.owner, owner, service.clock(), held_since=taken.since)
        if not isinstance(decision, steps.TakeOver):
            return decision
        if meetings.take_over(record.organizer, event_id, record.id, taken.etag):
            return Held(took_over=True, doubt=decision.doubt)
    return None


def meeting_key(organizer: str, event_id: str) -> str:
    """The meeting's partition key: a hash of the lower-cased organizer and the Graph event id."""
    digest = hashlib.sha256(f"{organizer.strip().lower()}\n{event_id}".encode()).hexdigest()
    return "meeting-" + digest[:48]


class MeetingLinks:
    def __init__(self, table: TableClient) -> None:
        self.table = table

    def take(self, organizer: str, event_id: str, request_id: str) -> Taken:
        """The meeting for this request (a conditional write naming it), or who holds it."""
        key = meeting_key(organizer, event_id)
        entity = {"PartitionKey": key, "RowKey": ROW, "owner": request_id}
        for _ in range(TAKE_TRIES):
            try:
                with storage_errors("take meeting", passing=_HANDLED):
                    self.table.create_entity(entity)
                return Mine()
            except ResourceExistsError:
                pass
            try:
                with storage_errors("read meeting", passing=_HANDLED):
                    row = self.table.get_entity(key, ROW)
            except ResourceNotFoundError:
                continue  # removed meanwhile: insert again
            owner, etag = str(row.get("owner", "")), str(row.metadata["etag"])
            if owner != request_id:
                return Theirs(owner, etag, row.metadata.get("timestamp"))
            if self._write(key, request_id, etag):
                return Mine()
        raise ConcurrentUpdate("the meeting's row kept changing", record_id=request_id)

    def take_over(self, organizer: str, event_id: str, request_id: str, etag: str) -> bool:
        """Names this request the meeting's owner if the row is still as read; False if it changed."""
        return self._write(meeting_key(organizer, event_id), request_id, etag)

    def owner(self, organizer: str, event_id: str) -> str | None:
        """Who holds the meeting (operators and tests)."""
        try:
            with storage_errors("read meeting", passing=_HANDLED):
                row = self.table.get_entity(meeting_key(organizer, event_id), ROW)
        except ResourceNotFoundError:
            return None
        return str(row.get("owner", "")) or None

    def _write(self, key: str, request_id: str, etag: str) -> bool:
        entity = {"PartitionKey": key, "RowKey": ROW, "owner": request_id}
        try:
            with storage_errors("take meeting", passing=_HANDLED):
                self.table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True
