"""``GET /api/cancellations``: requests newest first, filtered, paged with a ``nextLink``.

A page reads index rows (``request_index``) of one partition per month, from where the previous
page stopped, and then each request's record by id; it never scans the table. Which partition:

* a caller who may read every request (a function key, or the app role ``Cancellations.Read.All``):
  the organizer's rows when ``organizer`` is given, else the status class's rows when ``status`` is
  given, else the four status classes' rows merged by row key;
* any other caller: their own rows (those they submitted), so a page never holds another's request.

The other filters are checked on the record itself, as is the row (a stale row is skipped). A page
stops at ``top`` requests or after reading ``MAX_ROWS_PER_PAGE`` rows, whichever comes first, and
then carries a ``nextLink`` (so a page may hold fewer than ``top``; only the absence of a
``nextLink`` says the list is complete), the convention of Graph and Azure REST APIs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from . import request_index as ix
from .callers import FUNCTION_KEY_CALLER, ROLE_READ_ALL, Caller
from .field_reading import EARLIEST_DAY, LATEST_DAY
from .models import MAX_ORGANIZER_LENGTH
from .problems import Problem
from .records import Status, StatusRecord

if TYPE_CHECKING:
    from .service import Service

DEFAULT_TOP = 25
MAX_TOP = 100
MAX_ROWS_PER_PAGE = 500
MAX_SPAN_DAYS = 400
SKIP_TOKEN = "$skiptoken"  # noqa: S105 - the name of a query parameter, not a secret
PARAMETERS = frozenset({"organizer", "status", "from", "to", "top", SKIP_TOKEN, "code"})
ASCII_NUMBER = re.compile(r"[0-9]{1,4}")  # str.isdigit() also takes '²' and other scripts' digits
PERIOD = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class Query:
    start: datetime
    end: datetime
    top: int = DEFAULT_TOP
    organizer: str | None = None
    status: Status | None = None
    after: tuple[str, str] | None = None  # (month, last row key) of the previous page


@dataclass(frozen=True)
class Page:
    records: list[StatusRecord]
    skip_token: str | None


def may_read_all(caller: Caller) -> bool:
    return caller.kind == FUNCTION_KEY_CALLER or ROLE_READ_ALL in caller.roles


def parse_query(params: Mapping[str, str], *, now: datetime, retention_days: int) -> Query:
    """The query string, or a 400 naming every parameter to fix."""
    errors: list[dict[str, str]] = []
    unknown = sorted(set(params) - PARAMETERS)
    for name in unknown:
        errors.append({"field": name, "message": f"unknown parameter; use {', '.join(sorted(PARAMETERS - {'code'}))}"})
    end = _moment(params, "to", errors) or now + timedelta(minutes=1)
    start = _moment(params, "from", errors) or end - timedelta(days=retention_days + 1)
    if start >= end:
        errors.append({"field": "from", "message": "must be before 'to'"})
    elif end - start > timedelta(days=MAX_SPAN_DAYS):
        errors.append({"field": "from", "message": f"'from' and 'to' may be at most {MAX_SPAN_DAYS} days apart"})
    status = None
    if "status" in params:
        try:
            status = Status(params["status"])
        except ValueError:
            errors.append({"field": "status", "message": f"one of {', '.join(s.value for s in Status)}"})
    top = DEFAULT_TOP
    if "top" in params:
        if not ASCII_NUMBER.fullmatch(params["top"]) or not 1 <= int(params["top"]) <= MAX_TOP:
            errors.append({"field": "top", "message": f"a whole number from 1 to {MAX_TOP}"})
        else:
            top = int(params["top"])
    after = _decode_token(params[SKIP_TOKEN], errors) if SKIP_TOKEN in params else None
    organizer = params.get("organizer") or None
    if organizer is not None and len(organizer) > MAX_ORGANIZER_LENGTH:
        errors.append({"field": "organizer", "message": f"at most {MAX_ORGANIZER_LENGTH} characters"})
    if errors:
        raise Problem(400, "invalidQuery", "Invalid query", "Fix the query parameters listed in errors.", errors=errors)
    return Query(start=start, end=end, top=top, organizer=organizer, status=status, after=after)


def list_requests(service: Service, query: Query, *, caller: Caller) -> Page:
    found: list[StatusRecord] = []
    read = 0
    first = f"{ix.newest_first(query.end):013d}|~"  # row keys of requests created before `end`
    before = f"{ix.newest_first(query.start) + 1:013d}"  # ... and at or after `start`
    for period in ix.months_between(query.start, query.end):
        if query.after and period > query.after[0]:
            continue
        after = query.after[1] if query.after and period == query.after[0] else first
        partitions = _partitions(query, caller, period)
        while True:
            limit = min(MAX_ROWS_PER_PAGE - read, 100)
            fetched = [service.store.rows(p, p, after=after, before=before, limit=limit) for p in partitions]
            merged = sorted((row for rows in fetched for row in rows), key=lambda row: str(row["RowKey"]))
            exhausted = all(len(rows) < limit for rows in fetched)
            if not exhausted:  # only rows below every partition's last row are certainly in order
                horizon = min(str(rows[-1]["RowKey"]) for rows in fetched if len(rows) == limit)
                merged = [row for row in merged if str(row["RowKey"]) <= horizon]
            for row in merged:
                read += 1
                after = str(row["RowKey"])
                record = service.store.get(str(row["request_id"]))
                if record is not None and ix.matches(row, record) and _wanted(record, query, caller):
                    found.append(record)
                if len(found) == query.top or read >= MAX_ROWS_PER_PAGE:
                    return Page(found, _encode_token(period, after))
            if exhausted:
                break
    return Page(found, None)


def _partitions(query: Query, caller: Caller, period: str) -> list[str]:
    """The one partition a page reads per month, or the four status classes merged (all requests)."""
    if not may_read_all(caller):
        return [ix.submitter_partition(caller.label, period)]
    if query.organizer:
        return [ix.organizer_partition(query.organizer, period)]
    if query.status:
        return [ix.status_partition(ix.status_class(query.status), period)]
    return [ix.status_partition(klass, period) for klass in ix.STATUS_CLASSES]


def _wanted(record: StatusRecord, query: Query, caller: Caller) -> bool:
    if not may_read_all(caller) and record.submitted_by != caller.label:
        return False
    if query.organizer and record.organizer.lower() != query.organizer.lower():
        return False
    return query.status is None or record.status.public == query.status.public  # accepted reads as queued


def _moment(params: Mapping[str, str], name: str, errors: list[dict[str, str]]) -> datetime | None:
    if name not in params:
        return None
    try:
        moment = datetime.fromisoformat(params[name])
    except ValueError:
        errors.append({"field": name, "message": "an ISO 8601 date or date and time, such as 2026-11-01T00:00:00Z"})
        return None
    if not EARLIEST_DAY <= moment.date() <= LATEST_DAY:  # so that reading it in UTC stays a datetime
        errors.append({"field": name, "message": f"between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}"})
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _encode_token(period: str, row_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([period, row_key]).encode()).decode().rstrip("=")


def _decode_token(token: str, errors: list[dict[str, str]]) -> tuple[str, str] | None:
    try:
        period, row_key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(period, str) and isinstance(row_key, str) and PERIOD.fullmatch(period):
            return period, row_key
    except (binascii.Error, ValueError, TypeError):
        pass
    errors.append({"field": SKIP_TOKEN, "message": "not a token this service gave; follow nextLink as it is"})
    return None
