"""How the contracts read a body's fields, shared by the cancellation body, the queue message and
the offboarding body: names case-insensitively, days and moments in the contract's format and
within the days a calendar holds, and every rule (fields' own and those between fields) reported
in one answer. Messages say what to send, never the parser's own words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

# Dates and moments a meeting can have: far enough apart for any calendar, near enough that a day
# read in any time zone (UTC-12 to UTC+14) stays inside what ``datetime`` can hold.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)
DAY_FORMAT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
DAY_HELP = "must be a day as YYYY-MM-DD, such as 2026-12-08"
MOMENT_HELP = (
    "must be a date and time with a UTC offset, as YYYY-MM-DDThh:mm:ss and Z or ±hh:mm, such as 2026-12-01T00:00:00Z"
)


def check_day(value: Any) -> Any:
    """A day as the contract writes it (YYYY-MM-DD), within the days a calendar holds; never the
    parser's own words ("invalid character in year", "should have zero time")."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif not isinstance(value, str) or not DAY_FORMAT.fullmatch(value):
        raise PydanticCustomError("day_format", DAY_HELP)
    else:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("day_format", f"{DAY_HELP}; {value} is not a day of the calendar") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise PydanticCustomError(
            "day_range", f"must be a day between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"
        )
    return day


def check_moment(value: Any) -> Any:
    """A moment as the contract writes it (ISO 8601 with a UTC offset), within the days a calendar
    holds, so reading it in UTC can never leave what ``datetime`` holds."""
    if isinstance(value, datetime):
        moment = value
    elif not isinstance(value, str) or not DAY_FORMAT.fullmatch(value[:10]) or len(value) > 40:
        raise PydanticCustomError("moment_format", MOMENT_HELP)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("moment_format", MOMENT_HELP) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PydanticCustomError("offset", "needs a UTC offset, such as 2026-12-01T00:00:00Z")
    if not EARLIEST_DAY <= moment.date() <= LATEST_DAY:
        raise PydanticCustomError(
            "moment_range", f"must be between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"
        )
    return moment


def fold_field_names(fields: Iterable[str], data: Any) -> dict[str, Any]:
    """The body's fields under the model's names, read case-insensitively as Graph reads them;
    a name given twice (in any case) is refused."""
    if not isinstance(data, dict):
        raise PydanticCustomError("not_object", "the body must be a JSON object")
    canonical = {name.lower(): name for name in fields}
    folded: dict[str, Any] = {}
    for key, value in data.items():
        name = canonical.get(key.lower(), key) if isinstance(key, str) else key
        if name in folded:
            raise PydanticCustomError(
                "duplicate_field",
                "the field {name} is given twice (names are case-insensitive)",
                {"name": repr(name)},
            )
        folded[name] = value
    return folded


def validate_all_at_once(
    model: type[BaseModel],
    data: dict[str, Any],
    handler: Callable[[Any], Any],
    cross_field: list[tuple[str, str, str]],
) -> Any:
    """Runs the field rules and the rules between fields together, so one answer lists every bad
    field: pydantic skips a model's own checks once a field fails, and a caller would otherwise
    fix one mistake per round trip. ``cross_field`` holds (field, error type, message)."""
    extra = [
        InitErrorDetails(type=PydanticCustomError(kind, message), loc=(field,), input=data.get(field))
        for field, kind, message in cross_field
    ]
    try:
        validated = handler(data)
    except ValidationError as error:
        if not extra:
            raise
        _raise(model, [*_as_init_details(error), *extra])
    if extra:
        _raise(model, extra)
    return validated


def _as_init_details(error: ValidationError) -> list[InitErrorDetails]:
    return [
        InitErrorDetails(
            type=PydanticCustomError(item["type"], item["msg"], item.get("ctx")),
            loc=item["loc"],
            input=item["input"],
        )
        for item in error.errors(include_url=False)
    ]


def _raise(model: type[BaseModel], details: list[InitErrorDetails]) -> NoReturn:
    raise ValidationError.from_exception_data(model.__name__, details)
