"""The meetings an organizer organizes in a window, as an offboarding cancels them, and when their
notices are expected to have gone out.

* calendarView returns occurrences, exceptions and single meetings that *overlap* the window,
  edges included (EWS CalendarView docs; microsoft-graph-docs-contrib#387), so a timed meeting that
  only touches the window (ends exactly at ``from``) is left out here.
* calendarView is **not sorted by start** (microsoft-graph-docs#4517): a series is named by its
  master id and its earliest occurrence is found by comparing, never by order.
* A series is cancelled through its master by default, which cancels every occurrence, past and
  beyond the window (event-cancel.md; as Exchange's Remove-CalendarEvents): the preview shows the
  whole span from the master's ``recurrence.range``. ``scope: occurrences`` cancels only the
  occurrences inside the window, one request each.
* How long it takes is bound by what Graph and Exchange limit (``pace``), not a fixed pacing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .batch_models import MeetingView, WindowRequest
from .errors import GraphError
from .recipient_budget import plan

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)

# Graph allows 10,000 requests per 10 minutes per app and mailbox (throttling-limits.md, "Outlook
# service limits"); each cancel costs at most two (the read and the cancel), so at most one notice
# every 0.12 s. The 4 concurrent requests per mailbox are held by the worker's mailbox slots, and the
# 10,000 recipients a day by the recipient budget (``plan``). Exchange's 30 messages a minute applies
# to SMTP client submission, not to Graph (Exchange Online limits, sending limits).
SECONDS_PER_SEND = 2 * 600 / 10_000


def find_meetings(
    service: Service, organizer: str, window: WindowRequest, request_id: str, *, limit: int | None = None
) -> list[MeetingView]:
    """The meetings the organizer organizes in the window, not cancelled, with attendees. Stops
    reading Graph's pages once ``limit`` meetings are found (a preview is capped as a batch is)."""
    found: dict[str, MeetingView] = {}
    series: dict[str, list[str]] = {}
    needle = (window.subjectContains or "").lower()
    for event in service.graph.calendar_view(organizer, window.start, window.end, request_id=request_id):
        if not event.get("isOrganizer") or event.get("isCancelled") or not event.get("attendees"):
            continue
        if needle and needle not in str(event.get("subject", "")).lower():
            continue
        if not _inside(event, window):
            continue
        master = event.get("seriesMasterId")
        start = str((event.get("start") or {}).get("dateTime", ""))
        if master and window.scope == "series":
            series.setdefault(str(master), []).append(start)
            known = found.get(str(master))
            if known is None or _instant(start) < _instant(known.start):
                found[str(master)] = _view(event, str(master), start, "series")
        else:
            found[str(event["id"])] = _view(event, str(event["id"]), start, "occurrence" if master else "single")
        if limit is not None and len(found) >= limit:
            break
    for master_id, starts in series.items():
        found[master_id] = _with_range(service, organizer, found[master_id], starts, request_id)
    return sorted(found.values(), key=lambda m: (_instant(m.start), m.eventId))


def estimated_completion(
    service: Service, organizer: str, recipients: Iterable[int], now: datetime, usage: Mapping[datetime, int]
) -> datetime | None:
    """When the last of these notices is expected to go out: within the mailbox's recipient limit
    (what it already sent in the last 24 hours counted), at Graph's request pace. None: no notice."""
    limit = service.settings.mailbox_recipients_per_day
    counts = [min(count, limit) for count in recipients if count]
    times = plan(usage, counts, limit, now, seconds_per_send=SECONDS_PER_SEND)
    return times[-1].replace(microsecond=0) if times else None


def _view(event: dict[str, Any], event_id: str, start: str, kind: str) -> MeetingView:
    return MeetingView(
        eventId=event_id,
        subject=str(event.get("subject", "")),
        start=start,
        attendees=len(event["attendees"]),
        kind=kind,
    )


def _with_range(
    service: Service, organizer: str, meeting: MeetingView, starts: list[str], request_id: str
) -> MeetingView:
    """The whole span a master's cancel covers, from its ``recurrence.range``; the occurrences in
    the window when the master cannot be read."""
    ordered = sorted(starts, key=_instant)
    span: dict[str, Any] = {
        "seriesStart": ordered[0][:10],
        "seriesEnd": ordered[-1][:10],
        "seriesRange": "window",
        "occurrencesInWindow": len(starts),
    }
    try:
        master = service.graph.series(organizer, meeting.eventId, request_id=request_id)
    except GraphError as error:
        log.warning("could not read series master %s: %s", meeting.eventId, error.code)
    else:
        found = (master.get("recurrence") or {}).get("range") or {}
        if found.get("startDate"):
            kind = str(found.get("type") or "endDate")
            span.update(
                seriesStart=found["startDate"],
                seriesEnd=found.get("endDate") if kind == "endDate" else None,
                seriesRange=kind,
            )
            meeting = meeting.model_copy(update={"attendees": len(master.get("attendees") or []) or meeting.attendees})
    return meeting.model_copy(update=span)


def _inside(event: dict[str, Any], window: WindowRequest) -> bool:
    """Graph's overlap includes a meeting that ends exactly at ``from``; it is not in the window.
    All-day events are floating dates whose instants depend on the mailbox's zone: Graph decides."""
    if event.get("isAllDay"):
        return True
    end = (event.get("end") or {}).get("dateTime")
    return not end or _instant(end) > window.start


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
