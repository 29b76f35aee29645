"""The offboarding contracts as pydantic models: the window a caller sends, the preview and batch
status it gets back, and the batch record kept in the status table.

The connector describes the preview and the batch status as one definition,
``OrganizerCancellationResult`` (with ``MeetingPreview`` for each meeting); the parity test in
``tests/unit/test_contract_parity.py`` holds these models to it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .field_reading import check_moment, fold_field_names
from .models import FIELD_HELP, MAX_COMMENT_LENGTH, _check_comment

MAX_WINDOW_DAYS = 732
WINDOW_HELP = {
    "from": "the start of the window, with a UTC offset, such as 2026-12-01T00:00:00Z",
    "to": "the end of the window, with a UTC offset, such as 2026-12-31T00:00:00Z",
}


class WindowRequest(BaseModel):
    """The offboarding body. Read as the cancellation body is: names case-insensitively, every bad
    field at once; the window is sent as ``from`` and ``to`` (``start`` and ``end`` are unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Names other APIs give the window (Graph's calendarView, other schedulers): named in the hint.
    SYNONYMS: ClassVar[dict[str, str]] = {
        "start": "from",
        "end": "to",
        "startdatetime": "from",
        "enddatetime": "to",
        "since": "from",
        "until": "to",
    }

    start: Annotated[
        datetime,
        Field(alias="from", description=WINDOW_HELP["from"]),
    ]
    end: Annotated[
        datetime,
        Field(alias="to", description=WINDOW_HELP["to"]),
    ]
    comment: Annotated[str | None, Field(max_length=MAX_COMMENT_LENGTH, description=FIELD_HELP["comment"])] = None
    subjectContains: Annotated[
        str | None, Field(min_length=1, max_length=255, description="Only meetings whose subject contains this text")
    ] = None
    preview: Annotated[bool, Field(description="List the meetings without cancelling anything")] = False
    scope: Annotated[
        Literal["series", "occurrences"],
        Field(
            description="series (default): a series is cancelled once through its master, every occurrence with it, "
            "past and beyond the window; occurrences: only the occurrences inside the window, one request each"
        ),
    ] = "series"

    _comment = field_validator("comment")(_check_comment)
    _moment = field_validator("start", "end", mode="before")(check_moment)

    @model_validator(mode="wrap")
    @classmethod
    def _fold_field_names(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(fold_field_names((f.alias or name for name, f in cls.model_fields.items()), data))

    @model_validator(mode="after")
    def _ordered(self) -> WindowRequest:
        if self.end <= self.start:
            raise PydanticCustomError("window", "'to' must be after 'from'", {"field": "to"})
        if self.end - self.start > timedelta(days=MAX_WINDOW_DAYS):
            raise PydanticCustomError("window", f"the window may span at most {MAX_WINDOW_DAYS} days", {"field": "to"})
        return self


class MeetingView(BaseModel):
    """A meeting that a batch would cancel: a series once through its master (with the whole span
    the master cancels), or, with ``scope: occurrences``, each occurrence in the window."""

    model_config = ConfigDict(frozen=True)

    eventId: str = Field(description="The Graph id (a series master for a series)")
    subject: str = Field(description="The subject of the meeting")
    start: str = Field(description="When it starts (for a series, its earliest occurrence in the window), UTC")
    attendees: int = Field(description="How many attendees get the notice")
    kind: Literal["single", "series", "occurrence"] = Field(description="single, series or occurrence")
    seriesStart: str | None = Field(
        None, description="For a series: the first day of the whole series (cancelling the master cancels all of it)"
    )
    seriesEnd: str | None = Field(
        None, description="For a series: its last day, or absent when the series has no end date"
    )
    seriesRange: str | None = Field(
        None,
        description="For a series: where the span comes from: endDate, noEnd or numbered (the master's recurrence), "
        "or window (the master could not be read: its first and last occurrences in the window)",
    )
    occurrencesInWindow: int | None = Field(
        None, description="For a series: how many of its occurrences are in the window"
    )


class BatchPreview(BaseModel):
    """The answer to ``preview: true``: what would be cancelled; nothing changed."""

    organizer: str = Field(description="The mailbox of the organizer")
    count: int = Field(description="How many meetings the preview found")
    meetings: list[MeetingView] = Field(description="The meetings the preview found")
    recipients: int = Field(description="How many notices in all: the attendees of every meeting, rooms included")
    estimatedCompletion: datetime | None = Field(
        None, description="When the last notice is expected to go out, within the mailbox's recipient limit"
    )


class BatchRequestView(BaseModel):
    id: str = Field(description="The tracking id of the request")
    eventId: str = Field(description="The Graph id of the meeting")
    status: str = Field(description="The status of the request")
    error: str | None = Field(None, description="Why it failed, if it did")


class BatchStatus(BaseModel):
    """A batch and its requests: pending until every request is final."""

    id: str = Field(description="The tracking id of the batch")
    organizer: str = Field(description="The mailbox of the organizer")
    total: int = Field(description="How many meetings the batch cancels")
    counts: dict[str, int] = Field(description="How many requests are in each status")
    done: bool = Field(description="Whether every request is final")
    recipients: int | None = Field(None, description="How many notices the batch sends in all")
    estimatedCompletion: datetime | None = Field(
        None, description="While pending: when the last notice is expected to go out"
    )
    requests: list[BatchRequestView] = Field(description="One cancellation request per meeting")


class BatchRecord(BaseModel):
    """The batch row of the status table, written after every child is recorded and queued."""

    model_config = ConfigDict(frozen=True)

    id: str
    organizer: str
    count: int
    request_hash: str
    recipients: int | None = None
    submitted_by: str | None = None
    created_at: datetime
