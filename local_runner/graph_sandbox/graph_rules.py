"""Graph's rules for the calls the service makes: which answer a path, method and state lead to,
with Graph's error codes. Returns (status, payload); the handler puts it on the wire."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .state import Mailbox

if TYPE_CHECKING:
    from .sandbox import GraphSandbox

log = logging.getLogger("local_runner.graph_sandbox")
NOT_ORGANIZER = "Your request can't be completed. You need to be an organizer to cancel a meeting."
_REST_ID = re.compile(r"^[A-Za-z0-9_-]+=*$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
Answer = tuple[int, Any]


def operation_of(method: str, segments: list[str]) -> str:
    """The name calls are recorded (and faults matched) under."""
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


def apply(
    sandbox: GraphSandbox,
    method: str,
    segments: list[str],
    query: dict[str, list[str]],
    body: bytes,
    record: dict[str, Any],
) -> Answer:
    state = sandbox.state
    if len(segments) == 2 and segments[0] == "users" and method == "GET":
        return user(sandbox, segments[1])
    if len(segments) < 3 or segments[0] != "users" or segments[2] not in ("events", "calendarView"):
        return 400, {"code": "BadRequest", "message": "Unsupported path in the sandbox."}
    with state.lock:
        mailbox = find_mailbox(sandbox, segments[1])
        if isinstance(mailbox, tuple):
            return mailbox
        events = state.events[mailbox.upn]
        if segments[2] == "calendarView" and method == "GET":
            return calendar_view(sandbox, mailbox, events, query)
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
                event_id = sandbox.create_event(mailbox.upn, document.get("subject", ""), attendees)
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
                    e for e in events.values() if e.get("seriesMasterId") == event_id and start <= _start_of(e) < end
                ]
            }
        if len(segments) == 4 and method == "DELETE":
            del events[event_id]
            record["applied"] = True
            return 204, None
        if len(segments) == 5 and segments[4] == "cancel" and method == "POST":
            if not event["isOrganizer"]:
                return 400, {"code": "ErrorInvalidRequest", "message": NOT_ORGANIZER}
            cancel(sandbox, mailbox, event, (json_or_none(body) or {}).get("comment"))
            record["applied"] = True
            return 202, None
    return 405, {"code": "BadRequest", "message": "Unsupported method in the sandbox."}


def calendar_view(
    sandbox: GraphSandbox, mailbox: Mailbox, events: dict[str, dict[str, Any]], query: dict[str, list[str]]
) -> Answer:
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
        page["@odata.nextLink"] = f"{sandbox.graph_base_url}/users/{quote(mailbox.upn)}/calendarView?" + urlencode(
            {
                "startDateTime": query["startDateTime"][0],
                "endDateTime": query["endDateTime"][0],
                "$top": top,
                "$skip": skip + top,
            }
        )
    return 200, page


def user(sandbox: GraphSandbox, key: str) -> Answer:
    """GET /users/{id | userPrincipalName}: a directory read, so a user without a mailbox is
    found too; an unknown one is Graph's directory 404, ``Request_ResourceNotFound``."""
    lowered = key.lower()
    state = sandbox.state
    found = state.mailboxes.get(lowered) or next((m for m in state.mailboxes.values() if m.id == lowered), None)
    if found is None:
        return 404, {
            "code": "Request_ResourceNotFound",
            "message": f"Resource '{key}' does not exist or one of its queried reference-property objects "
            "are not present.",
        }
    return 200, {"id": found.id, "userPrincipalName": found.upn, "displayName": found.display_name}


def find_mailbox(sandbox: GraphSandbox, key: str) -> Mailbox | tuple[int, dict[str, str]]:
    state = sandbox.state
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


def cancel(sandbox: GraphSandbox, mailbox: Mailbox, event: dict[str, Any], comment: str | None) -> None:
    """Moves the organizer's copy (a series with its occurrences) to Deleted Items and sends each
    attendee the notice."""
    state = sandbox.state
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


def json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


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
