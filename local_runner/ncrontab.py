"""NCRONTAB schedules as Azure Functions timer triggers read them.

Six fields, ``{second} {minute} {hour} {day} {month} {day-of-week}`` (the Functions timer trigger
parses with NCrontab's ``IncludingSeconds = true``: Azure/azure-webjobs-sdk-extensions
``Timers/Scheduling/CronSchedule.cs``). Each field is ``*``, a value, a range ``a-b``, a step
``*/n``, ``a-b/n`` or ``a/n`` (a to the field's maximum), or a comma list of those. Months and days
of the week also take names, matched as NCrontab does: case-insensitive, any prefix of the English
name (``Jan``, ``mon``, ``Sunday``). Day of week runs 0-6 with Sunday 0. A day must match both the
day-of-month and the day-of-week field (NCrontab ``CrontabSchedule.TryGetNextOccurrence`` checks
the day of week after the date, unlike Unix cron's either-or).

croniter (PyPI) takes seconds as a trailing sixth field unless told otherwise and ORs the two day
fields by default; NCrontab's rules are few, so this small parser follows them exactly
(atifaziz/NCrontab ``CrontabFieldImpl.cs``) and tests/unit/test_ncrontab.py pins them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 6, DAYS),
)
SEARCH_YEARS = 8  # 29 February on a Monday recurs within this


@dataclass(frozen=True)
class Schedule:
    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after ``moment`` (whole seconds), None if there is none."""
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = moment + timedelta(days=366 * SEARCH_YEARS)
        while candidate <= limit:
            if candidate.month not in self.months:
                candidate = _first_of_next_month(candidate)
                continue
            weekday = (candidate.weekday() + 1) % 7  # Python's Monday 0 to cron's Sunday 0
            if candidate.day not in self.days or weekday not in self.days_of_week:
                candidate = _midnight(candidate) + timedelta(days=1)
                continue
            hour = _at_or_after(self.hours, candidate.hour)
            if hour is None:
                candidate = _midnight(candidate) + timedelta(days=1)
                continue
            if hour != candidate.hour:
                candidate = candidate.replace(hour=hour, minute=0, second=0)
            minute = _at_or_after(self.minutes, candidate.minute)
            if minute is None:
                candidate = candidate.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if minute != candidate.minute:
                candidate = candidate.replace(minute=minute, second=0)
            second = _at_or_after(self.seconds, candidate.second)
            if second is None:
                candidate = candidate.replace(second=0) + timedelta(minutes=1)
                continue
            return candidate.replace(second=second)
        return None

    def shortest_interval(self, start: datetime) -> timedelta | None:
        """The gap between the next two occurrences (the host monitors schedules of a minute or more)."""
        first = self.next_after(start)
        second = self.next_after(first) if first else None
        return second - first if first and second else None


def parse_schedule(expression: str) -> Schedule:
    """Parses six NCRONTAB fields, raising ValueError with the field at fault."""
    tokens = expression.split()
    if len(tokens) != len(FIELDS):
        raise ValueError(
            f"an NCRONTAB schedule has 6 fields ({{second}} {{minute}} {{hour}} {{day}} {{month}} "
            f"{{day-of-week}}); {expression!r} has {len(tokens)}"
        )
    values = [_parse_field(token, *spec) for token, spec in zip(tokens, FIELDS, strict=True)]
    return Schedule(
        expression,
        tuple(sorted(values[0])),
        tuple(sorted(values[1])),
        tuple(sorted(values[2])),
        frozenset(values[3]),
        frozenset(values[4]),
        frozenset(values[5]),
    )


def _parse_field(token: str, name: str, low: int, high: int, names: tuple[str, ...]) -> set[int]:
    chosen: set[int] = set()
    for part in token.split(","):
        if not part:
            raise ValueError(f"{name} field {token!r} has an empty list item")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name} field {token!r}: the step after '/' must be a whole number from 1")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = _value(start, name, low, high, names), _value(end, name, low, high, names)
            if first > last:
                raise ValueError(f"{name} field {token!r}: the range {base!r} runs backwards")
        else:
            first = _value(base, name, low, high, names)
            last = high if step_text else first
        chosen.update(range(first, last + 1, step))
    return chosen


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.isdigit():
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"{name} value {number} is outside {low}-{high}")
        return number
    for offset, full in enumerate(names):
        if text and full.lower().startswith(text.lower()):
            return low + offset
    known = f"; or a name: {', '.join(n[:3] for n in names)}" if names else ""
    raise ValueError(f"{name} value {text!r} is not a number from {low} to {high}{known}")


def _at_or_after(sorted_values: tuple[int, ...], current: int) -> int | None:
    position = bisect.bisect_left(sorted_values, current)
    return sorted_values[position] if position < len(sorted_values) else None


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0)


def _first_of_next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
