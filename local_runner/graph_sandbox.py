"""A loopback stand-in for the part of Microsoft Graph the service uses, plus a managed-identity
token endpoint, so the real ``azure-identity`` and ``requests`` code paths run unchanged.

It keeps Graph's rules: a bearer token it issued is required, only the organizer's copy can be
cancelled, errors have Graph's codes and body shape. It records every call and the notices the
attendees would have received, and it can be told to misbehave (faults, latency, throttling)
for tests and benchmarks. State lives in memory: a restart begins again from the seed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

log = logging.getLogger("local_runner.graph_sandbox")
IDENTITY_PATH = "/msi/token"
NOT_ORGANIZER = "Your request can't be completed. You need to be an organizer to cancel a meeting."
_REST_ID = re.compile(r"^[A-Za-z0-9_-]+=*$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def rest_id(seed: str) -> str:
    """A stable id in Graph's REST alphabet, ending in '=' like real ones often do."""
    digest = hashlib.sha256(seed.encode()).digest() + hashlib.sha256(seed[::-1].encode()).digest()
    return "AAMkAG" + base64.urlsafe_b64encode(digest[:52]).decode()


@dataclass
class Fault:
    """One rule: the next ``times`` calls that match get ``action`` instead of the normal answer.

    Actions: ``status`` (answer with that status, Graph error ``code`` and optional
    ``retry_after``), ``reset_after_apply`` (do the work, then drop the connection) and
    ``slow_after_apply`` (do the work, then answer after ``delay`` seconds) and ``hook_after_apply``
    (do the work, then run ``hook``, for a test to break something at exactly that moment).
    """

    action: str
    times: int = 1
    operation: str = "cancel"
    status: int = 500
    code: str = "InternalServerError"
    retry_after: float | None = None
    delay: float = 0.0
    mailbox: str | None = None
    hook: Callable[[], None] | None = None


@dataclass
class Limits:
    """Graph's throttling, scaled down: concurrent calls and calls per window, per mailbox."""

    concurrent_per_mailbox: int | None = None
    per_mailbox_per_window: int | None = None
    window_seconds: float = 1.0
    retry_after: float = 1.0
    latency_seconds: tuple[float, float] = (0.0, 0.0)


@dataclass
class Mailbox:
    upn: str
    id: str
    display_name: str
    has_mailbox: bool = True


@dataclass
class SandboxState:
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    events: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    outbox: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    tokens: dict[str, float] = field(default_factory=dict)
    token_requests: int = 0
    identity_down_until: float = 0.0
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recent: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.RLock = field(default_factory=threading.RLock)


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
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
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
        self, upn: str, display_name: str = "", *, has_mailbox: bool = True, object_id: str | None = None
    ) -> Mailbox:
        mailbox = Mailbox(
            upn=upn.lower(),
            id=(object_id or str(uuid.uuid5(uuid.NAMESPACE_DNS, upn.lower()))).lower(),
            display_name=display_name or upn.split("@")[0],
            has_mailbox=has_mailbox,
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
        end: str = "2026-12-01T09:30:00",
        ical_uid: str | None = None,
    ) -> str:
        """Creates the organizer's copy and, for attendees with a mailbox here, their copies."""
        attendees = attendees or []
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
                self._store_event(
                    mailbox,
                    copy_id,
                    subject,
                    organizer,
                    attendees,
                    event_type,
                    ical_uid,
                    start,
                    end,
                    is_organizer=is_organizer,
                )
        return organizer_id

    def add_occurrences(self, organizer: str, master_id: str, starts: list[str], minutes: int = 30) -> list[str]:
        """Occurrences of a series master, as calendarView and instances list them."""
        ids = []
        with self.state.lock:
            master = self.state.events[organizer.lower()][master_id]
            for start in starts:
                occurrence_id = rest_id(f"{master_id}/{start}")
                end = (datetime.fromisoformat(start) + timedelta(minutes=minutes)).isoformat(timespec="seconds")
                self.state.events[organizer.lower()][occurrence_id] = {
                    **master,
                    "id": occurrence_id,
                    "type": "occurrence",
                    "seriesMasterId": master_id,
                    "start": {"dateTime": start, "timeZone": "UTC"},
                    "end": {"dateTime": end, "timeZone": "UTC"},
                }
                ids.append(occurrence_id)
        return ids

    def event_id_of(self, mailbox: str, subject: str) -> str:
        with self.state.lock:
            for event in self.state.events[mailbox.lower()].values():
                if event["subject"] == subject:
                    return str(event["id"])
        raise KeyError(f"{mailbox} has no event {subject!r}")

    def add_fault(self, fault: Fault) -> None:
        with self.state.lock:
            self.state.faults.append(fault)

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

    def _store_event(
        self,
        mailbox: str,
        event_id: str,
        subject: str,
        organizer: str,
        attendees: list[str],
        event_type: str,
        ical_uid: str,
        start: str,
        end: str,
        *,
        is_organizer: bool,
    ) -> None:
        self.state.events[mailbox.lower()][event_id] = {
            "id": event_id,
            "subject": subject,
            "type": event_type,
            "iCalUId": ical_uid,
            "isOrganizer": is_organizer,
            "isCancelled": False,
            "organizer": {"emailAddress": {"address": organizer.lower()}},
            "attendees": [{"emailAddress": {"address": a.lower()}, "type": "required"} for a in attendees],
            "start": {"dateTime": start, "timeZone": "UTC"},
            "end": {"dateTime": end, "timeZone": "UTC"},
        }

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


def seed_demo(sandbox: GraphSandbox) -> None:
    """Demo mailboxes and meetings with stable ids, so the printed curl always works."""
    for upn, name in (
        ("adele.vance@contoso.com", "Adele Vance"),
        ("alex.wilber@contoso.com", "Alex Wilber"),
        ("megan.bowen@contoso.com", "Megan Bowen"),
    ):
        sandbox.add_mailbox(upn, name)
    sandbox.create_event(
        "adele.vance@contoso.com",
        "Quarterly planning",
        ["alex.wilber@contoso.com", "megan.bowen@contoso.com"],
        event_id=rest_id("demo/planning"),
    )
    sandbox.create_event(
        "adele.vance@contoso.com",
        "Weekly sync",
        ["alex.wilber@contoso.com"],
        event_type="seriesMaster",
        event_id=rest_id("demo/weekly"),
    )
    sandbox.create_event("megan.bowen@contoso.com", "Focus time", event_id=rest_id("demo/focus"))
    sandbox.create_event(
        "megan.bowen@contoso.com", "Design review", ["adele.vance@contoso.com"], event_id=rest_id("demo/review")
    )


def _handler_for(sandbox: GraphSandbox) -> type[BaseHTTPRequestHandler]:
    class Handler(_SandboxHandler):
        pass

    Handler.sandbox = sandbox
    return Handler


class _Reset(Exception):
    """Drop the connection without answering."""


class _SandboxHandler(BaseHTTPRequestHandler):
    sandbox: GraphSandbox
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # answers go out at once, not after a delayed ACK

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            if parts.path == IDENTITY_PATH:
                self._identity(parse_qs(parts.query))
            elif parts.path.startswith("/sandbox/"):
                self._sandbox_api(method, parts.path, body)
            elif parts.path.startswith("/v1.0/"):
                self._graph(method, parts.path, parse_qs(parts.query), body)
            else:
                self._send(404, {"error": "not found"})
        except _Reset:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    # ----- identity endpoint (App Service / Functions flavour, api-version 2019-08-01)
    def _identity(self, query: dict[str, list[str]]) -> None:
        if self.headers.get("X-IDENTITY-HEADER") != self.sandbox.identity_header:
            self._send(401, {"error": "invalid_request", "error_description": "X-IDENTITY-HEADER missing or wrong"})
            return
        if time.time() < self.sandbox.state.identity_down_until:
            self._send(500, {"error": "service_unavailable", "error_description": "identity endpoint is down"})
            return
        if not query.get("resource"):
            self._send(400, {"error": "invalid_request", "error_description": "resource is required"})
            return
        self._send(200, self.sandbox.issue_token())

    # ----- sandbox API: outbox, calls, faults
    def _sandbox_api(self, method: str, path: str, body: bytes) -> None:
        state = self.sandbox.state
        with state.lock:
            if path == "/sandbox/outbox" and method == "GET":
                self._send(200, {"value": state.outbox})
            elif path == "/sandbox/calls" and method == "GET":
                self._send(200, {"value": state.calls, "tokenRequests": state.token_requests})
            elif path == "/sandbox/events" and method == "GET":
                self._send(200, {mailbox: list(events.values()) for mailbox, events in state.events.items()})
            elif path == "/sandbox/faults" and method == "POST":
                self.sandbox.add_fault(Fault(**json.loads(body)))
                self._send(201, {"faults": len(state.faults)})
            elif path == "/sandbox/faults" and method == "DELETE":
                state.faults.clear()
                self._send(204, None)
            else:
                self._send(404, {"error": "not found"})

    # ----- Graph
    def _graph(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> None:
        raw_segments = path[len("/v1.0/") :].split("/")
        segments = [unquote(s) for s in raw_segments]
        operation = _operation(method, segments)
        record: dict[str, Any] = {
            "method": method,
            "path": path,
            "operation": operation,
            "applied": False,
            "time": time.time(),
            "clientRequestId": self.headers.get("client-request-id"),
            "userAgent": self.headers.get("User-Agent"),
            "body": _json_or_none(body),
        }
        if len(segments) > 1:
            record["mailbox"] = segments[1].lower()
        if len(segments) > 3:
            record["eventId"] = segments[3]
        with self.sandbox.state.lock:
            self.sandbox.state.calls.append(record)
        if not self.sandbox.token_valid(self.headers.get("Authorization")):
            record["status"] = 401
            self._error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
            return
        mailbox = record.get("mailbox", "")
        fault = self._take_fault(operation, mailbox)
        if fault and fault.action == "status":
            record["status"] = fault.status
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            self._error(fault.status, fault.code, f"Injected fault {fault.status}.", headers)
            return
        throttled = self._throttle(mailbox)
        if throttled:
            record["status"] = 429
            self._error(
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                {"Retry-After": f"{self.sandbox.state.limits.retry_after:g}"},
            )
            return
        try:
            self._latency()
            status, payload = self._apply(method, segments, query, body, record)
        finally:
            with self.sandbox.state.lock:
                self.sandbox.state.in_flight[mailbox] -= 1
        record["status"] = status
        if fault and fault.action == "reset_after_apply":
            raise _Reset()
        if fault and fault.action == "slow_after_apply":
            time.sleep(fault.delay)
        if fault and fault.action == "hook_after_apply" and fault.hook is not None:
            fault.hook()
        if status >= 400:
            self._error(status, payload["code"], payload["message"])
        else:
            self._send(status, payload)

    def _take_fault(self, operation: str, mailbox: str) -> Fault | None:
        with self.sandbox.state.lock:
            for fault in self.sandbox.state.faults:
                if (
                    fault.operation in (operation, "any")
                    and fault.times > 0
                    and (fault.mailbox is None or fault.mailbox == mailbox)
                ):
                    fault.times -= 1
                    return fault
        return None

    def _throttle(self, mailbox: str) -> bool:
        state = self.sandbox.state
        limits = state.limits
        with state.lock:
            now = time.monotonic()
            if limits.concurrent_per_mailbox is not None and state.in_flight[mailbox] >= limits.concurrent_per_mailbox:
                return True
            if limits.per_mailbox_per_window is not None:
                recent = [t for t in state.recent[mailbox] if now - t < limits.window_seconds]
                state.recent[mailbox] = recent
                if len(recent) >= limits.per_mailbox_per_window:
                    return True
                recent.append(now)
            state.in_flight[mailbox] += 1
        return False

    def _latency(self) -> None:
        low, high = self.sandbox.state.limits.latency_seconds
        if high > 0:
            time.sleep(low + (high - low) * secrets.randbelow(1000) / 1000)

    def _apply(
        self, method: str, segments: list[str], query: dict[str, list[str]], body: bytes, record: dict[str, Any]
    ) -> tuple[int, Any]:
        state = self.sandbox.state
        if len(segments) == 2 and segments[0] == "users" and method == "GET":
            return self._user(segments[1])
        if len(segments) < 3 or segments[0] != "users" or segments[2] not in ("events", "calendarView"):
            return 400, {"code": "BadRequest", "message": "Unsupported path in the sandbox."}
        with state.lock:
            mailbox = self._mailbox(segments[1])
            if isinstance(mailbox, tuple):
                return mailbox
            events = state.events[mailbox.upn]
            if segments[2] == "calendarView" and method == "GET":
                return self._calendar_view(mailbox, events, query)
            if len(segments) == 3:
                if method == "GET":
                    listed = [e for e in events.values() if e["type"] in ("singleInstance", "seriesMaster")]
                    wanted = _ical_uid_filter(query)
                    if wanted is not None:
                        listed = [e for e in listed if e["iCalUId"] == wanted]
                    return 200, {"value": listed}
                if method == "POST":
                    document = json.loads(body or b"{}")
                    attendees = [a["emailAddress"]["address"] for a in document.get("attendees", [])]
                    event_id = self.sandbox.create_event(mailbox.upn, document.get("subject", ""), attendees)
                    return 201, events[event_id]
            event_id = segments[3]
            if not _REST_ID.fullmatch(event_id):
                return 400, {"code": "ErrorInvalidIdMalformed", "message": "Id is malformed."}
            event = events.get(event_id)
            if event is None:
                return 404, {"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}
            if len(segments) == 4 and method == "GET":
                return 200, event
            if len(segments) == 5 and segments[4] == "instances" and method == "GET":
                start, end = _window(query)
                return 200, {
                    "value": [
                        e
                        for e in events.values()
                        if e.get("seriesMasterId") == event_id and start <= _start_of(e) < end
                    ]
                }
            if len(segments) == 4 and method == "DELETE":
                del events[event_id]
                record["applied"] = True
                return 204, None
            if len(segments) == 5 and segments[4] == "cancel" and method == "POST":
                if not event["isOrganizer"]:
                    return 400, {"code": "ErrorInvalidRequest", "message": NOT_ORGANIZER}
                comment = (_json_or_none(body) or {}).get("comment")
                self._cancel(mailbox, event, comment)
                record["applied"] = True
                return 202, None
        return 405, {"code": "BadRequest", "message": "Unsupported method in the sandbox."}

    def _calendar_view(
        self, mailbox: Mailbox, events: dict[str, dict[str, Any]], query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        """Occurrences and single meetings that start in the window, paged like Graph with nextLink."""
        start, end = _window(query)
        top = int(query.get("$top", ["10"])[0])
        skip = int(query.get("$skip", ["0"])[0])
        matching = sorted(
            (e for e in events.values() if e["type"] != "seriesMaster" and start <= _start_of(e) < end),
            key=lambda e: (_start_of(e), e["id"]),
        )
        page: dict[str, Any] = {"value": matching[skip : skip + top]}
        if skip + top < len(matching):
            page["@odata.nextLink"] = (
                f"{self.sandbox.graph_base_url}/users/{quote(mailbox.upn)}/calendarView?"
                + urlencode(
                    {
                        "startDateTime": query["startDateTime"][0],
                        "endDateTime": query["endDateTime"][0],
                        "$top": top,
                        "$skip": skip + top,
                    }
                )
            )
        return 200, page

    def _user(self, key: str) -> tuple[int, Any]:
        """GET /users/{id | userPrincipalName}: a directory read, so a user without a mailbox is
        found too; an unknown one is Graph's directory 404, ``Request_ResourceNotFound``."""
        lowered = key.lower()
        state = self.sandbox.state
        found = state.mailboxes.get(lowered) or next((m for m in state.mailboxes.values() if m.id == lowered), None)
        if found is None:
            return 404, {
                "code": "Request_ResourceNotFound",
                "message": f"Resource '{key}' does not exist or one of its queried reference-property objects "
                "are not present.",
            }
        return 200, {"id": found.id, "userPrincipalName": found.upn, "displayName": found.display_name}

    def _mailbox(self, key: str) -> Mailbox | tuple[int, dict[str, str]]:
        state = self.sandbox.state
        lowered = key.lower()
        found = state.mailboxes.get(lowered) or next(
            (m for m in state.mailboxes.values() if _GUID.fullmatch(lowered) and m.id == lowered), None
        )
        if found is None:
            return 404, {"code": "ErrorInvalidUser", "message": f"The requested user '{key}' is invalid."}
        if not found.has_mailbox:
            return 404, {
                "code": "MailboxNotEnabledForRESTAPI",
                "message": "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            }
        return found

    def _cancel(self, mailbox: Mailbox, event: dict[str, Any], comment: str | None) -> None:
        """Moves the organizer's copy (a series with its occurrences) to Deleted Items and sends each
        attendee the notice."""
        state = self.sandbox.state
        del state.events[mailbox.upn][event["id"]]
        if event["type"] == "seriesMaster":
            for occurrence in [e for e in state.events[mailbox.upn].values() if e.get("seriesMasterId") == event["id"]]:
                del state.events[mailbox.upn][occurrence["id"]]
        for attendee in event["attendees"]:
            address = attendee["emailAddress"]["address"]
            notice = {
                "to": address,
                "from": mailbox.upn,
                "subject": f"Canceled: {event['subject']}",
                "comment": comment,
                "sentAt": datetime.now(UTC).isoformat(),
            }
            state.outbox.append(notice)
            for copy in state.events.get(address, {}).values():
                if copy["iCalUId"] == event["iCalUId"]:
                    copy["isCancelled"] = True
            log.info(
                "notice sent to %s: %s%s",
                address,
                notice["subject"],
                f" with the organizer's message ({len(comment)} characters)" if comment else "",
            )

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        request_id = str(uuid.uuid4())
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "request-id": request_id,
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "client-request-id": self.headers.get("client-request-id"),
                },
            }
        }
        self._send(status, body, {"request-id": request_id, **(headers or {})})

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.headers.get("client-request-id"):
            self.send_header("client-request-id", self.headers["client-request-id"])
        self.end_headers()
        self.wfile.write(data)


def _window(query: dict[str, list[str]]) -> tuple[datetime, datetime]:
    return (_parse_time(query["startDateTime"][0]), _parse_time(query["endDateTime"][0]))


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _start_of(event: dict[str, Any]) -> datetime:
    return _parse_time(event["start"]["dateTime"])


def _ical_uid_filter(query: dict[str, list[str]]) -> str | None:
    found = re.fullmatch(r"iCalUId eq '((?:[^']|'')*)'", query.get("$filter", [""])[0])
    return found.group(1).replace("''", "'") if found else None


def _operation(method: str, segments: list[str]) -> str:
    if len(segments) == 2:
        return "user"
    if len(segments) > 2 and segments[2] == "calendarView":
        return "calendarView"
    if len(segments) == 5 and segments[4] == "instances":
        return "instances"
    if len(segments) == 5 and segments[4] == "cancel":
        return "cancel"
    if len(segments) == 4:
        return {"GET": "get", "DELETE": "delete"}.get(method, method.lower())
    return "list" if method == "GET" else "create"


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
