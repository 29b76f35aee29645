"""The request contracts (DESIGN 3.1 and 3.2) as pydantic models.

Validation happens once, here, for both doors: the HTTP intake and queue messages written by
workflows. Messages are written for people fixing a request, so each says what to send instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .field_reading import check_day, fold_field_names, validate_all_at_once
from .time_zones import UnknownTimeZone, canonical_name

GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
# RFC 5322 dot-atoms without the characters that would change a URL path or query ('/', '?', '#',
# '%', '\\'); UPNs allow no whitespace either.
_ATOM = r"[A-Za-z0-9!$&'*+=^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
UPN = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")
# Graph REST ids are URL-safe base64: letters, digits, '-', '_' and '=' padding.
REST_ID = re.compile(r"^[A-Za-z0-9_-]+=*$")
# iCalUIds are hex from Exchange, or e.g. "uid@host" from other calendars; no quotes or spaces.
ICAL_UID = re.compile(r"^[A-Za-z0-9._@:+/=-]{1,1024}$")
# Tracking ids become Table Storage keys and URL segments.
TRACKING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
# W3C Trace Context version 00 (https://www.w3.org/TR/trace-context/#traceparent-header).
TRACEPARENT = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")

MAX_ORGANIZER_LENGTH = 256
MAX_EVENT_ID_LENGTH = 1024
# A character costs at most 6 bytes once JSON-escaped, so 8,000 keep the queue message well under
# the 64 KB queue limit together with the other fields.
MAX_COMMENT_LENGTH = 8000
# "The maximum number of attendees included in an event ... is 500" (Graph, resources/event.md)
MAX_ATTENDEES = 500

FIELD_HELP = {
    "organizer": "the organizer's userPrincipalName (jane@contoso.com) or Entra object id",
    "eventId": "the Graph REST id of the event, as returned by GET /users/{organizer}/events",
    "comment": "the message sent to the attendees (optional)",
    "iCalUId": "instead of eventId: the meeting's iCalendar UID, as other calendars know it",
    "occurrenceDate": "with the eventId of a series: the day (YYYY-MM-DD) of the one occurrence to cancel",
    "timeZone": "the time zone the occurrence day is in, IANA (Europe/Berlin) or Windows (W. Europe Standard Time)",
    "recipients": "how many attendees the meeting has (rooms included), when the sender knows: the worker then "
    "counts them against the mailbox's daily recipient limit without reading the event first",
    "id": "your tracking id (optional): letters, digits, '.', '_', ':' and '-', up to 128",
    "traceparent": "a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>, optional): the worker continues this trace",
}


def _check_organizer(value: str) -> str:
    if GUID.fullmatch(value):
        return value.lower()
    if any(ch.isspace() for ch in value):
        raise PydanticCustomError("organizer", "must not contain whitespace; send the userPrincipalName alone")
    if ".." in value or not UPN.fullmatch(value):
        raise PydanticCustomError(
            "organizer",
            "must be a userPrincipalName such as jane@contoso.com or an Entra object id (GUID); "
            "'/', '?', '#', '%', '\\' and consecutive dots are not allowed",
        )
    return value


def _check_event_id(value: str) -> str:
    if "/" in value or "+" in value:
        raise PydanticCustomError(
            "ews_id",
            "looks like an EWS id ('/' or '+'); translate it to a REST id with Graph's "
            "translateExchangeIds (targetIdType restId) and send that",
        )
    if not REST_ID.fullmatch(value):
        raise PydanticCustomError(
            "event_id",
            "must be a Graph REST id: letters, digits, '-', '_' and trailing '=' only",
        )
    return value


def _check_optional_event_id(value: str | None) -> str | None:
    return None if value is None else _check_event_id(value)


def _check_comment(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise PydanticCustomError(
            "empty_comment",
            "must not be empty: Graph sends no notice for an empty comment; leave the field out "
            "to send Graph's default notice",
        )
    return value


class CancelRequest(BaseModel):
    """A request to cancel one meeting on behalf of its organizer.

    Field names are read case-insensitively, as Graph itself reads them: its own documentation
    sends ``"Comment"``, and a caller copying it should not be refused for the capital letter.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    organizer: Annotated[str, Field(min_length=3, max_length=MAX_ORGANIZER_LENGTH, description=FIELD_HELP["organizer"])]
    eventId: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_EVENT_ID_LENGTH,
            description=FIELD_HELP["eventId"],
            json_schema_extra={"pattern": REST_ID.pattern},
        ),
    ] = None
    iCalUId: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=1024,
            description=FIELD_HELP["iCalUId"],
            json_schema_extra={"pattern": ICAL_UID.pattern},
        ),
    ] = None
    occurrenceDate: Annotated[date | None, Field(description=FIELD_HELP["occurrenceDate"])] = None
    timeZone: Annotated[str | None, Field(min_length=1, max_length=64, description=FIELD_HELP["timeZone"])] = None
    comment: Annotated[str | None, Field(max_length=MAX_COMMENT_LENGTH, description=FIELD_HELP["comment"])] = None

    @model_validator(mode="wrap")
    @classmethod
    def _every_rule_at_once(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        folded = fold_field_names(cls.model_fields, data)
        return validate_all_at_once(cls, folded, handler, _target_rules(folded))

    _organizer = field_validator("organizer")(_check_organizer)
    _day = field_validator("occurrenceDate", mode="before")(check_day)
    _event_id = field_validator("eventId")(_check_optional_event_id)
    _comment = field_validator("comment")(_check_comment)

    @field_validator("iCalUId")
    @classmethod
    def _check_ical_uid(cls, value: str | None) -> str | None:
        if value is not None and not ICAL_UID.fullmatch(value):
            raise PydanticCustomError("ical_uid", "must be an iCalendar UID without spaces or quotes")
        return value

    @field_validator("timeZone")
    @classmethod
    def _check_time_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            return canonical_name(value)  # stored and compared as the IANA key
        except UnknownTimeZone as error:
            raise PydanticCustomError("time_zone", str(error)) from None

    @property
    def target(self) -> str:
        """What the request points at, whatever form the caller named it in."""
        if self.iCalUId is not None:
            return f"iCalUId:{self.iCalUId}"
        if self.occurrenceDate is not None:
            return f"{self.eventId}@{self.occurrenceDate.isoformat()}[{self.timeZone}]"
        return str(self.eventId)

    @property
    def needs_lookup(self) -> bool:
        return self.iCalUId is not None or self.occurrenceDate is not None

    @property
    def zone(self) -> ZoneInfo:
        assert self.timeZone is not None
        return ZoneInfo(self.timeZone)


def _target_rules(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The rules between fields, read from what was sent (present means not null), so they are
    reported together with every field's own rule."""
    sent = {name for name in ("eventId", "iCalUId", "occurrenceDate", "timeZone") if data.get(name) is not None}
    broken: list[tuple[str, str, str]] = []
    if {"eventId", "iCalUId"} <= sent:
        broken.append(("iCalUId", "target", "send one of eventId or iCalUId, not both"))
    elif not {"eventId", "iCalUId"} & sent:
        broken.append(("eventId", "target", "required: " + FIELD_HELP["eventId"] + " (or iCalUId instead)"))
    if "occurrenceDate" in sent and "timeZone" not in sent:
        broken.append(("timeZone", "occurrence", "required with occurrenceDate: " + FIELD_HELP["timeZone"]))
    elif "timeZone" in sent and "occurrenceDate" not in sent:
        broken.append(
            ("occurrenceDate", "occurrence", "required with timeZone: the day (YYYY-MM-DD) of the occurrence to cancel")
        )
    if "occurrenceDate" in sent and "iCalUId" in sent and "eventId" not in sent:
        broken.append(("occurrenceDate", "occurrence", "occurrenceDate needs the eventId of the series master"))
    return broken


class QueuedCancelRequest(CancelRequest):
    """A queue message: the POST body plus the caller's optional tracking id."""

    id: Annotated[
        str | None,
        Field(max_length=128, description=FIELD_HELP["id"], json_schema_extra={"pattern": TRACKING_ID.pattern}),
    ] = None

    recipients: Annotated[int | None, Field(ge=0, le=MAX_ATTENDEES, description=FIELD_HELP["recipients"])] = None

    traceparent: Annotated[
        str | None,
        Field(max_length=55, description=FIELD_HELP["traceparent"], json_schema_extra={"pattern": TRACEPARENT.pattern}),
    ] = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str | None) -> str | None:
        if value is not None and not TRACKING_ID.fullmatch(value):
            raise PydanticCustomError("tracking_id", FIELD_HELP["id"])
        return value

    @field_validator("traceparent")
    @classmethod
    def _check_traceparent(cls, value: str | None) -> str | None:
        if value is not None and not TRACEPARENT.fullmatch(value):
            raise PydanticCustomError("traceparent", FIELD_HELP["traceparent"])
        return value


def queue_message_schema() -> dict[str, Any]:
    """The JSON Schema workflows follow when they put a message on the queue (DESIGN 3.2)."""
    schema = QueuedCancelRequest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Cancel request queue message"
    schema["description"] = (
        "A message on the cancel-requests queue: plain-text JSON (or base64-encoded JSON). Field names are read "
        "case-insensitively; unknown fields send the message to the poison queue."
    )
    return schema


if __name__ == "__main__":
    import json
    import sys

    json.dump(queue_message_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
