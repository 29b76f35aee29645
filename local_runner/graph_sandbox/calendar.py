"""How Graph's calendar behaves, as its documentation and its users report it: the parts the
service must not get wrong, so that a test against the sandbox fails where the service would
fail against Graph.

* **Windows overlap, edges included.** calendarView and instances return every event that
  overlaps the window, one that ends exactly at its start included (EWS CalendarView: only items
  ending *before* StartDate or starting on or after EndDate are left out; Graph users report the
  same: microsoft-graph-docs-contrib#387, msgraph-sdk-php#258).
* **All-day events are floating dates**, midnight to midnight, whatever the requested zone
  (jasonjoh in microsoft-graph-docs#1802: "All day events always return midnight-to-midnight
  regardless of time zone"); they occupy the mailbox zone's day when a window is matched.
* **Exceptions come back at their new time** with ``originalStart``, the UTC instant the
  occurrence was at (event-list-instances.md example; resources/event.md: "always in UTC"). Users
  report it missing or null (microsoft-graph-docs#4353): ``omit_original_start`` answers so.
* **calendarView is not sorted by start** (graph-docs#4517: use ``$orderby=start/dateTime``): the
  sandbox answers in creation order.
* **Cancel moves a single meeting or a series to Deleted Items**, and a REST id changes on a folder
  move (event-cancel.md; outlook-immutable-id.md), so a GET on the old id is 404 ErrorItemNotFound
  (graph-docs-contrib#8137). An immutable id (``Prefer: IdType="ImmutableId"``) still finds it.
  A cancelled occurrence leaves ``instances`` and is listed in the master's
  ``cancelledOccurrences`` (resources/event.md; closeio/sync-engine#389).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .state import Mailbox, rest_id

IMMUTABLE = "_immutableId"


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def floating(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "")).replace(tzinfo=None)


def span(event: dict[str, Any], mailbox: Mailbox) -> tuple[datetime, datetime]:
    """The instants an event occupies; an all-day event its dates in the mailbox's zone."""
    if event.get("isAllDay"):
        zone = ZoneInfo(mailbox.time_zone)
        return (
            floating(event["start"]["dateTime"]).replace(tzinfo=zone),
            floating(event["end"]["dateTime"]).replace(tzinfo=zone),
        )
    return parse_time(event["start"]["dateTime"]), parse_time(event["end"]["dateTime"])


def overlaps(event: dict[str, Any], mailbox: Mailbox, start: datetime, end: datetime) -> bool:
    """Graph's window test: ends at or after the window's start, starts before its end."""
    first, last = span(event, mailbox)
    return last >= start and first < end


def original_start(occurrence_day: date | datetime, mailbox: Mailbox, all_day: bool) -> str:
    """``originalStart`` as Graph gives it: a UTC instant; an all-day occurrence's is the mailbox
    zone's midnight (graph-docs-contrib#7803: ``2018-06-05T07:00:00Z`` for a UTC-7 mailbox)."""
    if all_day:
        moment = datetime.combine(occurrence_day, time.min, ZoneInfo(mailbox.time_zone))
    else:
        assert isinstance(occurrence_day, datetime)
        moment = occurrence_day if occurrence_day.tzinfo else occurrence_day.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def present(event: dict[str, Any], *, immutable: bool, select: str | None, omit_original_start: bool) -> dict[str, Any]:
    """An event as Graph puts it on the wire: internal fields dropped, the id in the requested
    form, only the ``$select``-ed properties (and ``id``) when a ``$select`` was given."""
    shown = {key: value for key, value in event.items() if not key.startswith("_")}
    if immutable:
        shown["id"] = event[IMMUTABLE]
    if omit_original_start and "originalStart" in shown:
        shown["originalStart"] = None
    if select:
        wanted = {name.strip() for name in select.split(",")} | {"id"}
        shown = {key: value for key, value in shown.items() if key in wanted}
    return shown


def occurrence_key(master_id: str, occurrence: dict[str, Any], mailbox: Mailbox) -> str:
    """A ``cancelledOccurrences`` entry: ``OID.{master id}.{original date in the mailbox's zone}``."""
    original = occurrence.get("originalStart")
    if original:
        day = parse_time(original).astimezone(ZoneInfo(mailbox.time_zone)).date().isoformat()
    else:
        day = occurrence["start"]["dateTime"][:10]
    return f"OID.{master_id}.{day}"


def deleted_id(event_id: str) -> str:
    """The REST id an item gets in Deleted Items: not the one it had."""
    return rest_id(f"{event_id}/deleteditems")


def shifted(value: str, delta: timedelta) -> str:
    return (floating(value) + delta).isoformat(timespec="seconds")
