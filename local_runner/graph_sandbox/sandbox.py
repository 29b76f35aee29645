"""The sandbox as tests and the runner use it: start and stop it, arrange mailboxes, events and
faults, read what it recorded, and issue managed-identity tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

from . import calendar
from .handler import IDENTITY_PATH, handler_for
from .seed import seed_demo
from .state import Fault, Mailbox, SandboxState, rest_id


class GraphSandbox:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        identity_header: str | None = None,
        token_lifetime_seconds: int = 3600,
        seed: bool = True,
    ) -> None:
        self.state = SandboxState()
        self.identity_header = identity_header or secrets.token_hex(16)
        self.token_lifetime_seconds = token_lifetime_seconds
        self._server = ThreadingHTTPServer((host, port), handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        if seed:
            seed_demo(self)

    # ----- lifecycle
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def graph_base_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.base_url}{IDENTITY_PATH}"

    def start(self) -> GraphSandbox:
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ----- arranging state (tests and the seed)
    def add_mailbox(
        self,
        upn: str,
        display_name: str = "",
        *,
        has_mailbox: bool = True,
        object_id: str | None = None,
        time_zone: str = "UTC",
    ) -> Mailbox:
        mailbox = Mailbox(
            upn=upn.lower(),
            id=(object_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, upn.lower()))).lower(),
            display_name=display_name or upn.split("@")[0],
            has_mailbox=has_mailbox,
            time_zone=time_zone,
        )
        with self.state.lock:
            self.state.mailboxes[mailbox.upn] = mailbox
        return mailbox

    def create_event(
        self,
        organizer: str,
        subject: str,
        attendees: list[str] | None = None,
        *,
        event_type: str = "singleInstance",
        event_id: str | None = None,
        start: str = "2026-12-01T09:00:00",
        end: str | None = None,
        ical_uid: str | None = None,
        all_day: bool = False,
    ) -> str:
        """Creates the organizer's copy and, for attendees with a mailbox here, their copies.
        Times are UTC; an all-day event's are dates (midnight to midnight, floating)."""
        attendees = attendees or []
        if end is None:
            end = calendar.shifted(start, timedelta(days=1) if all_day else timedelta(minutes=30))
        organizer_id = event_id or rest_id(f"{organizer}/{subject}/{uuid.uuid4()}")
        ical_uid = ical_uid or (
            "040000008200E00074C5B7101A82E008" + hashlib.sha256(f"{organizer}{organizer_id}".encode()).hexdigest()[:40]
        )
        copies = [(organizer, organizer_id, True)] + [
            (attendee, rest_id(f"{attendee}/{organizer_id}"), False)
            for attendee in attendees
            if attendee.lower() in self.state.mailboxes
        ]
        with self.state.lock:
            for mailbox, copy_id, is_organizer in copies:
                self.state.events[mailbox.lower()][copy_id] = {
                    "id": copy_id,
                    calendar.IMMUTABLE: immutable_id(copy_id),
                    "subject": subject,
                    "type": event_type,
                    "iCalUId": ical_uid,
                    "isOrganizer": is_organizer,
                    "isCancelled": False,
                    "isAllDay": all_day,
                    "organizer": {"emailAddress": {"address": organizer.lower()}},
                    "attendees": [{"emailAddress": {"address": a.lower()}, "type": "required"} for a in attendees],
                    "start": {"dateTime": start, "timeZone": "UTC"},
                    "end": {"dateTime": end, "timeZone": "UTC"},
                    "recurrence": None,
                }
        return organizer_id

    def add_occurrences(self, organizer: str, master_id: str, starts: list[str], minutes: int = 30) -> list[str]:
        """Occurrences of a series master, as calendarView and instances list them (with their
        ``originalStart``); the master's ``recurrence`` range spans them. For an all-day series
        ``starts`` are dates (``2026-12-04``) and each occurrence lasts the day."""
        ids = []
        with self.state.lock:
            mailbox = self.state.mailboxes[organizer.lower()]
            master = self.state.events[mailbox.upn][master_id]
            all_day = bool(master.get("isAllDay"))
            for start in starts:
                begins = start[:10] + "T00:00:00" if all_day else start
                length = timedelta(days=1) if all_day else timedelta(minutes=minutes)
                occurrence_id = rest_id(f"{master_id}/{start}")
                first = datetime.fromisoformat(begins)
                self.state.events[mailbox.upn][occurrence_id] = {
                    **master,
                    "id": occurrence_id,
                    calendar.IMMUTABLE: immutable_id(occurrence_id),
                    "type": "occurrence",
                    "seriesMasterId": master_id,
                    "originalStart": calendar.original_start(first.date() if all_day else first, mailbox, all_day),
                    "start": {"dateTime": begins, "timeZone": "UTC"},
                    "end": {"dateTime": calendar.shifted(begins, length), "timeZone": "UTC"},
                    "recurrence": None,
                }
                ids.append(occurrence_id)
            dates = sorted(s[:10] for s in [*starts, *_range_dates(master)])
            master["recurrence"] = {
                "pattern": {"type": "weekly", "interval": 1},
                "range": {"type": "endDate", "startDate": dates[0], "endDate": dates[-1]},
            }
        return ids

    def move_occurrence(self, organizer: str, occurrence_id: str, new_start: str) -> None:
        """Makes an occurrence an exception at another time: Graph lists it at its new start and
        keeps ``originalStart`` (event-list-instances.md: "Changing meeting from 4/15 to 4/16")."""
        with self.state.lock:
            event = self.state.events[organizer.lower()][occurrence_id]
            length = calendar.floating(event["end"]["dateTime"]) - calendar.floating(event["start"]["dateTime"])
            event["type"] = "exception"
            event["start"] = {"dateTime": new_start, "timeZone": "UTC"}
            event["end"] = {"dateTime": calendar.shifted(new_start, length), "timeZone": "UTC"}

    def immutable_id_of(self, mailbox: str, event_id: str) -> str:
        with self.state.lock:
            return str(self.state.events[mailbox.lower()][event_id][calendar.IMMUTABLE])

    def event_id_of(self, mailbox: str, subject: str) -> str:
        with self.state.lock:
            for event in self.state.events[mailbox.lower()].values():
                if event["subject"] == subject:
                    return str(event["id"])
        raise KeyError(f"{mailbox} has no event {subject!r}")

    def add_fault(self, fault: Fault) -> None:
        with self.state.lock:
            self.state.faults.append(fault)

    # ----- reading what happened
    def successful_cancels(self, event_id: str | None = None) -> int:
        with self.state.lock:
            return sum(
                1
                for call in self.state.calls
                if call["operation"] == "cancel"
                and call["applied"]
                and (event_id is None or call["eventId"] == event_id)
            )

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(c) for c in self.state.calls if operation is None or c["operation"] == operation]

    # ----- tokens
    def issue_token(self) -> dict[str, Any]:
        token = "sandbox." + secrets.token_urlsafe(24)
        expires = time.time() + self.token_lifetime_seconds
        with self.state.lock:
            self.state.tokens[token] = expires
            self.state.token_requests += 1
        return {
            "access_token": token,
            "expires_on": str(int(expires)),
            "resource": "sandbox",
            "token_type": "Bearer",
            "client_id": "00000000-0000-0000-0000-000000000000",
        }

    def token_valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self.state.lock:
            expires = self.state.tokens.get(authorization[len("Bearer ") :])
        return expires is not None and expires > time.time()


def immutable_id(event_id: str) -> str:
    """An immutable id: another string than the REST id, stable across folder moves."""
    return rest_id(f"{event_id}/immutable")


def _range_dates(master: dict[str, Any]) -> list[str]:
    recurrence = master.get("recurrence") or {}
    found = recurrence.get("range") or {}
    return [found[key] for key in ("startDate", "endDate") if found.get(key)]
