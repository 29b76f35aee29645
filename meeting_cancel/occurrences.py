"""Which occurrence of a series a caller means by a date, and the shape of an event, from what
Graph actually returns.

``…/events/{id}/instances`` lists the occurrences that *overlap* its window, edges included
(calendarView semantics: EWS CalendarView docs; microsoft-graph-docs-contrib#387), and lists an
exception moved to another day at its *new* time (event-list-instances.md example). A one-day
window therefore also finds the previous day's all-day occurrence (it ends at this day's
midnight) and misses an occurrence moved away. So the worker asks for a wider window
(``search_window``) and picks the occurrence whose *original* date, in the caller's time zone, is
the requested one (``pick``):

* ``originalStart`` is a UTC instant (resources/event.md: "always in UTC"); users report it
  missing or null (microsoft-graph-docs#4353, graph-docs-contrib#6699), so an occurrence without
  it is taken at its ``start`` (an unmoved occurrence starts at its original time; a moved
  exception without ``originalStart`` can then only be found on its new day).
* All-day events are floating dates, midnight to midnight whatever the zone (jasonjoh,
  microsoft-graph-docs#1802), and their ``originalStart`` is the organizer's midnight as UTC
  (graph-docs-contrib#7803), which is another day in a zone east of it. So an all-day
  occurrence's date is read from its ``start`` date, or from ``originalStart`` in the event's own
  ``originalStartTimeZone`` when it was moved.
* Outlook refuses to move an occurrence across its neighbours (``ErrorOccurrenceCrossingBoundary``,
  microsoft-graph-docs PR 2275), so for a weekly or more frequent series an exception stays within
  a week of its original day: the window is widened by ``SEARCH_MARGIN`` on each side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .time_zones import UnknownTimeZone, zone_named

SEARCH_MARGIN = timedelta(days=7)
OCCURRENCE_TYPES = ("occurrence", "exception")
INSTANCE_FIELDS = "id,type,start,end,isAllDay,originalStart,originalStartTimeZone,isCancelled,seriesMasterId"


def search_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The instances window for one occurrence date: the day in the zone, widened on each side."""
    start = datetime.combine(day, time.min, zone)
    return start - SEARCH_MARGIN, start + timedelta(days=1) + SEARCH_MARGIN


def original_date(instance: dict[str, Any], zone: ZoneInfo) -> date | None:
    """The day an occurrence was scheduled on, in ``zone``; None when Graph gave no start at all."""
    original = instance.get("originalStart")
    start = (instance.get("start") or {}).get("dateTime")
    if instance.get("isAllDay"):
        if original and instance.get("type") == "exception":
            return _utc(original).astimezone(_zone_or(instance.get("originalStartTimeZone"), zone)).date()
        return date.fromisoformat(start[:10]) if start else None
    if original:
        return _utc(original).astimezone(zone).date()
    if start:
        return _utc(start, (instance.get("start") or {}).get("timeZone")).astimezone(zone).date()
    return None


def pick(instances: Iterable[dict[str, Any]], day: date, zone: ZoneInfo) -> list[str]:
    """The ids of the live occurrences whose original date is ``day`` (one, normally)."""
    return [
        str(instance["id"])
        for instance in instances
        if instance.get("type", "occurrence") in OCCURRENCE_TYPES
        and not instance.get("isCancelled")
        and original_date(instance, zone) == day
    ]


@dataclass(frozen=True)
class EventFacts:
    """What the worker reads of an event before cancelling it (one GET under the mailbox slot):
    who organizes it, how many get the notice, and its shape for a later verification."""

    rest_id: str
    kind: str
    is_organizer: bool
    is_cancelled: bool
    attendees: int
    series_master_id: str | None = None
    start: str | None = None

    @classmethod
    def of(cls, event: dict[str, Any]) -> EventFacts:
        start = event.get("start") or {}
        return cls(
            rest_id=str(event["id"]),
            kind=str(event.get("type") or "singleInstance"),
            is_organizer=bool(event.get("isOrganizer", True)),
            is_cancelled=bool(event.get("isCancelled")),
            attendees=len(event.get("attendees") or []),
            series_master_id=event.get("seriesMasterId"),
            start=start.get("dateTime") if isinstance(start, dict) else None,
        )

    @property
    def is_occurrence(self) -> bool:
        return self.kind in OCCURRENCE_TYPES


EVENT_FIELDS = "id,attendees,isOrganizer,isCancelled,type,seriesMasterId,start"


def verification_window(start: str | None, now: datetime) -> tuple[datetime, datetime]:
    """Where to look for an occurrence among its master's instances: around its start (a floating
    all-day date is at most a day off any zone), or around now when the start is unknown."""
    center = _utc(start) if start else now
    return center - timedelta(days=2), center + timedelta(days=2)


def _zone_or(name: object, fallback: ZoneInfo) -> ZoneInfo:
    """A Windows or IANA zone Graph named (``originalStartTimeZone``), else ``fallback``; a legacy
    ``tzone://Microsoft/Custom`` zone (resources/event.md) has no name to map."""
    if not isinstance(name, str) or not name:
        return fallback
    try:
        return zone_named(name)
    except UnknownTimeZone:
        return fallback


def _utc(value: str, zone_name: object = None) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC if zone_name in (None, "UTC") else _zone_or(zone_name, ZoneInfo("UTC")))
