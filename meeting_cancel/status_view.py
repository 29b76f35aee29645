"""The status resource as callers read it (``GET /api/cancellations/{id}``, the list, the
connector's CancellationStatus): a pydantic model like the request contracts, so the OpenAPI
definition is checked against it, with Graph's own answer and the request's Graph calls for
support cases."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .models import FIELD_HELP


class GraphErrorDetail(BaseModel):
    """What Graph itself said, for support cases: quote the request-id to Microsoft."""

    model_config = ConfigDict(populate_by_name=True)

    status: int | None = Field(None, description="Graph's HTTP status")
    code: str | None = Field(None, description="Graph's error code, such as ErrorItemNotFound")
    request_id: str | None = Field(None, alias="request-id", description="Graph's request-id")
    client_request_id: str | None = Field(
        None, alias="client-request-id", description="The GUID this service sent as client-request-id"
    )
    date: str | None = Field(None, description="When Graph answered")


class GraphCallView(BaseModel):
    """One Graph call made for the request, with both ids to quote to Microsoft support."""

    model_config = ConfigDict(populate_by_name=True)

    operation: str = Field(description="read, cancel, verify, instances, find, …")
    status: int | None = Field(None, description="Graph's HTTP status; absent when no answer came")
    client_request_id: str = Field(alias="client-request-id", description="The GUID sent as client-request-id")
    request_id: str | None = Field(None, alias="request-id", description="Graph's request-id")
    at: datetime = Field(description="When the call was made")


class CancellationError(BaseModel):
    code: str = Field(description="A stable code, such as eventNotFound or organizerNotAllowed")
    message: str = Field(description="What went wrong, for a person")
    graph: GraphErrorDetail | None = Field(None, description="Graph's own answer, where Graph answered")


class CancellationStatus(BaseModel):
    """The status resource: pending while queued, processing or retrying; final when cancelled, failed
    or aborted."""

    id: str = Field(description="The tracking id")
    status: Literal["queued", "processing", "retrying", "cancelled", "failed", "aborted"] = Field(
        description="queued, processing and retrying are pending; cancelled, failed and aborted are final"
    )
    organizer: str = Field(description=FIELD_HELP["organizer"])
    eventId: str | None = Field(
        None, description="The Graph id of the event (once found, for iCalUId and occurrence requests)"
    )
    target: str | None = Field(None, description="What the request named when it was not a plain event id")
    batchId: str | None = Field(None, description="The batch this request belongs to, if any")
    follows: str | None = Field(
        None,
        description="Another request for the same meeting that holds its cancellation; this one ends with its outcome",
    )
    createdAt: datetime = Field(description="When the request was accepted")
    updatedAt: datetime = Field(description="When the status last changed")
    attempts: int = Field(description="How many cancel calls were sent to Graph")
    submittedBy: str | None = Field(None, description="Who submitted it: functionKey, user:<id>, app:<id> or queue")
    nextAttemptAt: datetime | None = Field(None, description="When a retrying request is tried again")
    resolution: str | None = Field(None, description="How a final request was settled")
    error: CancellationError | None = Field(None, description="Why a failed request failed")
    lastError: CancellationError | None = Field(None, description="The last transient error of a retrying request")
    recipients: int | None = Field(None, description="How many people the notice goes to, once known")
    graphCalls: list[GraphCallView] | None = Field(
        None, description="The request's last Graph calls, each with its client-request-id and Graph's request-id"
    )
