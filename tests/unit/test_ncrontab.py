"""NCRONTAB schedules as the Functions timer trigger reads them (six fields, seconds first; NCrontab's
field syntax and its day-of-month AND day-of-week rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local_runner.ncrontab import parse_schedule

START = datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)  # a Tuesday


def upcoming(expression: str, count: int = 3, start: datetime = START) -> list[datetime]:
    schedule = parse_schedule(expression)
    moments: list[datetime] = []
    moment = start
    for _ in range(count):
        following = schedule.next_after(moment)
        assert following is not None
        moments.append(following)
        moment = following
    return moments


def at(day: int, hour: int, minute: int, second: int = 0, month: int = 11, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # the examples of Microsoft's timer trigger reference ("NCRONTAB examples")
        ("0 */5 * * * *", [at(24, 10, 20), at(24, 10, 25), at(24, 10, 30)]),
        ("0 0 * * * *", [at(24, 11, 0), at(24, 12, 0), at(24, 13, 0)]),
        ("0 0 */2 * * *", [at(24, 12, 0), at(24, 14, 0), at(24, 16, 0)]),
        ("0 0 9-17 * * *", [at(24, 11, 0), at(24, 12, 0), at(24, 13, 0)]),
        ("0 30 9 * * *", [at(25, 9, 30), at(26, 9, 30), at(27, 9, 30)]),
        ("0 30 9 * * 1-5", [at(25, 9, 30), at(26, 9, 30), at(27, 9, 30)]),
        ("0 30 9 * Jan Mon", [at(4, 9, 30, month=1, year=2027), at(11, 9, 30, month=1, year=2027)]),
        ("5 * * * * *", [at(24, 10, 16, 5), at(24, 10, 17, 5), at(24, 10, 18, 5)]),
        ("*/20 * * * * *", [at(24, 10, 15, 40), at(24, 10, 16, 0), at(24, 10, 16, 20)]),
        ("10,40 * * * * *", [at(24, 10, 15, 40), at(24, 10, 16, 10), at(24, 10, 16, 40)]),
        ("0 0 0 1-7/3 * *", [at(1, 0, 0, month=12), at(4, 0, 0, month=12), at(7, 0, 0, month=12)]),
        ("0 0 12 */10 * *", [at(1, 12, 0, month=12), at(11, 12, 0, month=12), at(21, 12, 0, month=12)]),
        ("0 0 3 5/10 * *", [at(25, 3, 0), at(5, 3, 0, month=12), at(15, 3, 0, month=12)]),
        ("0 0 0 * * sunday", [at(29, 0, 0), at(6, 0, 0, month=12), at(13, 0, 0, month=12)]),
        ("0 0 0 * * 0", [at(29, 0, 0), at(6, 0, 0, month=12), at(13, 0, 0, month=12)]),
    ],
)
def test_next_occurrences(expression: str, expected: list[datetime]) -> None:
    assert upcoming(expression, len(expected)) == expected


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    """NCrontab checks the day of week after the date (Unix cron would take either)."""
    fridays_13th = upcoming("0 0 0 13 * 5", 2)
    assert fridays_13th == [at(13, 0, 0, month=8, year=2027), at(13, 0, 0, month=10, year=2028)]
    assert all(moment.weekday() == 4 for moment in fridays_13th)


def test_the_31st_skips_shorter_months_and_29_february_waits_for_a_leap_year() -> None:
    assert upcoming("0 0 0 31 * *", 3) == [
        at(31, 0, 0, month=12),
        at(31, 0, 0, month=1, year=2027),
        at(31, 0, 0, month=3, year=2027),
    ]
    assert upcoming("0 0 0 29 2 *", 1) == [at(29, 0, 0, month=2, year=2028)]


def test_an_occurrence_is_strictly_after_the_given_moment() -> None:
    schedule = parse_schedule("0 0 0 * * *")
    midnight = at(25, 0, 0)
    assert schedule.next_after(midnight) == midnight + timedelta(days=1)
    assert schedule.next_after(midnight - timedelta(microseconds=1)) == midnight


def test_a_date_that_never_comes_has_no_occurrence() -> None:
    assert parse_schedule("0 0 0 30 2 *").next_after(START) is None


def test_names_are_case_insensitive_prefixes() -> None:
    assert parse_schedule("0 0 0 * JANUARY,feb mon-WED").months == frozenset({1, 2})
    assert parse_schedule("0 0 0 * * Tu").days_of_week == frozenset({2})


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 */5 * * *", "has 5"),  # five fields: the Functions host wants the seconds too
        ("0 0 0 * * * *", "has 7"),
        ("60 * * * * *", "second value 60 is outside 0-59"),
        ("0 0 24 * * *", "hour value 24 is outside 0-23"),
        ("0 0 0 0 * *", "day value 0 is outside 1-31"),
        ("0 0 0 * 13 *", "month value 13 is outside 1-12"),
        ("0 0 0 * * 7", "day of week value 7 is outside 0-6"),
        ("*/0 * * * * *", "step after '/' must be a whole number from 1"),
        ("0 0 17-9 * * *", "runs backwards"),
        ("0 0 0 * * Funday", "'Funday' is not a number from 0 to 6; or a name: Sun"),
        ("0 0 0 * * 1,,2", "empty list item"),
        ("0 0 x * * *", "hour value 'x' is not a number"),
    ],
)
def test_invalid_schedules_say_which_field_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_schedule(expression)


def test_shortest_interval() -> None:
    assert parse_schedule("*/5 * * * * *").shortest_interval(START) == timedelta(seconds=5)
    assert parse_schedule("0 0 3 * * *").shortest_interval(START) == timedelta(days=1)
