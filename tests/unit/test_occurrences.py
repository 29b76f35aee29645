"""Picking one occurrence by its original date from what ``instances`` returns, as Graph returns it
(see meeting_cancel/occurrences.py for the sources): overlapping windows, exceptions at their new
time with ``originalStart`` in UTC (sometimes missing), all-day occurrences as floating dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from meeting_cancel.occurrences import EventFacts, original_date, pick, search_window, verification_window

BERLIN = ZoneInfo("Europe/Berlin")


def timed(event_id: str, start: str, original: str | None = None, kind: str = "occurrence") -> dict[str, object]:
    event: dict[str, object] = {"id": event_id, "type": kind, "start": {"dateTime": start, "timeZone": "UTC"}}
    if original is not None:
        event["originalStart"] = original
    return event


def all_day(event_id: str, day: str, original: str | None = None, kind: str = "occurrence") -> dict[str, object]:
    event = timed(event_id, day + "T00:00:00.0000000", original, kind)
    event["isAllDay"] = True
    return event


def test_the_previous_days_all_day_occurrence_is_not_picked() -> None:
    # both overlap the Berlin day of 4 December: Graph includes the one ending at its midnight
    listed = [all_day("third", "2026-12-03"), all_day("fourth", "2026-12-04")]
    assert pick(listed, date(2026, 12, 4), BERLIN) == ["fourth"]


def test_an_all_day_date_does_not_move_with_the_zone() -> None:
    # originalStart is the organizer's midnight in UTC: 4 December 00:00 in Sydney is the 3rd in UTC
    occurrence = all_day("x", "2026-12-04", original="2026-12-03T13:00:00Z")
    assert original_date(occurrence, ZoneInfo("America/Los_Angeles")) == date(2026, 12, 4)


def test_a_moved_all_day_exception_is_read_in_its_own_zone() -> None:
    moved = all_day("x", "2026-12-06", original="2026-12-03T13:00:00Z", kind="exception")
    moved["originalStartTimeZone"] = "AUS Eastern Standard Time"
    assert original_date(moved, ZoneInfo("America/Los_Angeles")) == date(2026, 12, 4)


def test_a_moved_exception_belongs_to_its_original_day() -> None:
    listed = [timed("moved", "2026-12-17T10:00:00", original="2026-12-15T10:00:00Z", kind="exception")]
    assert pick(listed, date(2026, 12, 15), BERLIN) == ["moved"]
    assert pick(listed, date(2026, 12, 17), BERLIN) == []


def test_without_original_start_the_start_decides() -> None:
    listed = [timed("late", "2026-12-08T23:30:00"), timed("null", "2026-12-09T10:00:00", original=None)]
    listed[1]["originalStart"] = None
    assert pick(listed, date(2026, 12, 9), BERLIN) == ["late", "null"]


def test_cancelled_and_master_entries_are_never_picked() -> None:
    cancelled = timed("gone", "2026-12-09T10:00:00")
    cancelled["isCancelled"] = True
    master = timed("master", "2026-12-09T10:00:00", kind="seriesMaster")
    assert pick([cancelled, master], date(2026, 12, 9), BERLIN) == []


def test_the_search_window_reaches_an_exception_moved_within_a_week() -> None:
    start, end = search_window(date(2026, 12, 15), BERLIN)
    assert start <= datetime(2026, 12, 8, tzinfo=UTC)
    assert end >= datetime(2026, 12, 22, 23, tzinfo=UTC)


def test_event_facts_and_the_verification_window() -> None:
    facts = EventFacts.of(
        {
            "id": "occ",
            "type": "occurrence",
            "isOrganizer": True,
            "attendees": [{}, {}, {}],
            "seriesMasterId": "master",
            "start": {"dateTime": "2026-12-09T10:00:00.0000000", "timeZone": "UTC"},
        }
    )
    assert (facts.is_occurrence, facts.attendees, facts.series_master_id) == (True, 3, "master")
    start, end = verification_window(facts.start, datetime(2030, 1, 1, tzinfo=UTC))
    assert start < datetime(2026, 12, 9, 10, tzinfo=UTC) < end
