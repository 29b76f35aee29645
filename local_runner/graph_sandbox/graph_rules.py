"""Graph's rules for the calls the service makes: which answer a path, method and state lead to,
with Graph's error codes. Returns (status, payload); the handler puts it on the wire."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from . import calendar
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
    prefer: str = "",
) -> Answer:
    state = sandbox.state
    if len(segments) == 2 and segments[0] == "users" and method == "GET":
        return user(sandbox, segments[1])
    if len(segments) < 3 or segments[0] != "users" or segments[2] not in ("events", "calendarView"):
        return 400, {"code": "BadRequest", "message": "Unsupported path in the sandbox."}
    immutable = 'idtype="immutableid"' in prefer.replace(" ", "").lower()
    select = query.get("$select", [None])[0]

    def shown(event: dict[str, Any]) -> dict[str, Any]:
        return calendar.present(
            event, immutable=immutable, select=select, omit_original_start=state.omit_original_start
        )

    with state.lock:
        mailbox = find_mailbox(sandbox, segments[1])
        if isinstance(mailbox, tuple):
            return mailbox
        events = state.events[mailbox.upn]
        if segments[2] == "calendarView" and method == "GET":
            start, end = _window(query)
            matching = [
                e for e in events.values() if e["type"] != "seriesMaster" and calendar.overlaps(e, mailbox, start, end)
            ]
            return 200, _page(sandbox, mailbox, "calendarView", [shown(e) for e in matching], query)
        if len(segments) == 3:
            if method == "GET":
                listed = [e for e in events.values() if e["type"] in ("singleInstance", "seriesMaster")]
                wanted = _ical_uid_filter(query)
                if wanted is not None:
                    listed = [e for e in listed if e["iCalUId"] == wanted]
                return 200, {"value": [shown(e) for e in listed]}
            if method == "POST":
                document = json.loads(body or b"{}")
                attendees = [a["emailAddress"]["address"] for a in document.get("attendees", [])]
                event_id = sandbox.create_event(mailbox.upn, document.get("subject", ""), attendees)
                return 201, shown(events[event_id])
        event_id = segments[3]
        if not _REST_ID.fullmatch(event_id):
            return 400, {"code": "ErrorInvalidIdMalformed", "message": "Id is malformed."}
        event = find_event(sandbox, mailbox, event_id)
        if event is None:
            return 404, {"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}
        if len(segments) == 4 and method == "GET":
            return 200, shown(event)
        if len(segments) == 5 and segments[4] == "instances" and method == "GET":
            start, end = _window(query)
            matching = [
                e
                for e in events.values()
                if e.get("seriesMasterId") == event["id"] and calendar.overlaps(e, mailbox, start, end)
            ]
            return 200, _page(
                sandbox, mailbox, f"events/{quote(event_id)}/instances", [shown(e) for e in matching], query
            )
        if event.get("_folder") == "deleteditems":
            return 404, {"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}
        if len(segments) == 4 and method == "DELETE":
            del events[event["id"]]
            record["applied"] = True
            return 204, None
        if len(segments) == 5 and segments[4] == "cancel" and method == "POST":
            if not event["isOrganizer"]:
                # event-cancel.md documents the status and this message only, no code; this code is a guess
                return 400, {"code": "ErrorInvalidRequest", "message": NOT_ORGANIZER}
            cancel(sandbox, mailbox, event, (json_or_none(body) or {}).get("comment"))
            record["applied"] = True
            return 202, None
    return 405, {"code": "BadRequest", "message": "Unsupported method in the sandbox."}


def find_event(sandbox: GraphSandbox, mailbox: Mailbox, event_id: str) -> dict[str, Any] | None:
    """By REST id among live items; by immutable id among live and deleted items (an immutable id
    survives the move to Deleted Items, a REST id does not: outlook-immutable-id.md)."""
    state = sandbox.state
    live = state.events[mailbox.upn]
    if event_id in live:
        return live[event_id]
    for item in (*live.values(), *state.deleted[mailbox.upn].values()):
        if item.get(calendar.IMMUTABLE) == event_id:
            return item
    return None


def _page(
    sandbox: GraphSandbox, mailbox: Mailbox, path: str, matching: list[dict[str, Any]], query: dict[str, list[str]]
) -> dict[str, Any]:
    """One page, with Graph's ``@odata.nextLink`` to the next (default page size 10)."""
    top = int(query.get("$top", ["10"])[0])
    skip = int(query.get("$skip", ["0"])[0])
    page: dict[str, Any] = {"value": matching[skip : skip + top]}
    if skip + top < len(matching):
        following = {key: values[0] for key, values in query.items() if key != "$skip"}
        page["@odata.nextLink"] = f"{sandbox.graph_base_url}/users/{quote(mailbox.upn)}/{path}?" + urlencode(
            {**following, "$skip": skip + top}
        )
    return page


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
    """Cancels as Graph does: a single meeting or a series (with its occurrences) moves to Deleted
    Items under a new REST id; an occurrence leaves the series (listed in the master's
    ``cancelledOccurrences``). Each attendee, rooms included, gets the notice, unless the mailbox
    is past its recipient rate limit: then the notice bounces (the meeting is cancelled anyway)."""
    state = sandbox.state
    live = state.events[mailbox.upn]
    del live[event["id"]]
    if event["type"] in ("occurrence", "exception"):
        master = live.get(event.get("seriesMasterId", ""))
        if master is not None:
            master.setdefault("cancelledOccurrences", []).append(calendar.occurrence_key(master["id"], event, mailbox))
    else:
        if event["type"] == "seriesMaster":
            for occurrence in [e for e in live.values() if e.get("seriesMasterId") == event["id"]]:
                del live[occurrence["id"]]
        moved = {**event, "id": calendar.deleted_id(event["id"]), "_folder": "deleteditems"}
        state.deleted[mailbox.upn][moved["id"]] = moved
    recipients = [attendee["emailAddress"]["address"] for attendee in event["attendees"]]
    bounced = over_recipient_limit(sandbox, mailbox, len(recipients))
    for address in recipients:
        notice = {
            "to": address,
            "from": mailbox.upn,
            "subject": f"Canceled: {event['subject']}",
            "comment": comment,
            "sentAt": datetime.now(UTC).isoformat(),
        }
        if bounced:
            notice["bounced"] = "550 5.2.2 recipient rate limit exceeded"  # exact NDR code: not documented
            state.bounced.append(notice)
            continue
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


def over_recipient_limit(sandbox: GraphSandbox, mailbox: Mailbox, recipients: int) -> bool:
    """Counts the recipients in Exchange's rolling 24 hours; True when they would pass the limit."""
    state = sandbox.state
    now = time.time()
    recent = [(at, count) for at, count in state.sent[mailbox.upn] if now - at < 24 * 3600]
    state.sent[mailbox.upn] = recent
    if sum(count for _, count in recent) + recipients > state.limits.recipients_per_day:
        return True
    recent.append((now, recipients))
    return False


def json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def _window(query: dict[str, list[str]]) -> tuple[datetime, datetime]:
    return (calendar.parse_time(query["startDateTime"][0]), calendar.parse_time(query["endDateTime"][0]))


def _ical_uid_filter(query: dict[str, list[str]]) -> str | None:
    found = re.fullmatch(r"iCalUId eq '((?:[^']|'')*)'", query.get("$filter", [""])[0])
    return found.group(1).replace("''", "'") if found else None
