"""Offboarding as Graph shapes it: calendarView is unsorted and overlaps its window, a master's
cancel covers the whole series, ``scope: occurrences`` only the window's occurrences, and the
preview and the batch tell how many notices go out and when the last one is expected."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from local_runner.graph_sandbox import GraphSandbox
from meeting_cancel import service

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest, Response

MEGAN = "megan.bowen@contoso.com"
WINDOW = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}


def organizer_post(app: AppUnderTest, body: Mapping[str, object]) -> Response:
    return app.request("POST", f"/api/organizers/{ORGANIZER}/cancellations", body)


def test_a_series_is_named_by_its_earliest_occurrence_whatever_calendar_views_order(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    master = sandbox.create_event(ORGANIZER, "Weekly sync", [ATTENDEE], event_type="seriesMaster")
    sandbox.add_occurrences(ORGANIZER, master, ["2026-12-22T10:00:00", "2026-12-08T10:00:00"])  # listed late first
    sandbox.create_event(ORGANIZER, "Touching", [ATTENDEE], start="2026-11-30T23:00:00", end="2026-12-01T00:00:00")

    preview = organizer_post(app, {**WINDOW, "preview": True}).body

    [series] = preview["meetings"]  # the meeting that only touches the window is not in it
    assert (series["eventId"], series["start"]) == (master, "2026-12-08T10:00:00")
    assert (series["seriesStart"], series["seriesEnd"], series["occurrencesInWindow"]) == (
        "2026-12-08",
        "2026-12-22",
        2,
    )


def test_scope_occurrences_cancels_only_the_windows_occurrences_one_request_each(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    master = sandbox.create_event(ORGANIZER, "Weekly sync", [ATTENDEE, MEGAN], event_type="seriesMaster")
    before, *inside, after = sandbox.add_occurrences(
        ORGANIZER,
        master,
        ["2026-11-24T10:00:00", "2026-12-08T10:00:00", "2026-12-15T10:00:00", "2027-01-05T10:00:00"],
    )
    body = {**WINDOW, "scope": "occurrences", "comment": "Adele has left."}

    preview = organizer_post(app, {**body, "preview": True}).body
    queued = organizer_post(app, body)
    app.drain()
    batch = app.request("GET", f"/api/batches/{queued.body['id']}").body

    assert [(m["eventId"], m["kind"]) for m in preview["meetings"]] == [(i, "occurrence") for i in inside]
    assert preview["recipients"] == 4
    assert sorted(c["eventId"] for c in sandbox.calls("cancel")) == sorted(inside)
    assert {master, before, after} <= set(sandbox.state.events[ORGANIZER])
    assert batch["done"] is True
    assert batch["recipients"] == 4
    assert "estimatedCompletion" not in batch
    assert len(sandbox.state.outbox) == 4
    assert sandbox.calls("get") == []  # each child carried its attendee count: no read before the cancel


def test_the_preview_and_the_batch_estimate_when_the_last_notice_goes_out(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    os.environ["MAILBOX_RECIPIENTS_PER_DAY"] = "3"
    service.reset()
    for day in (2, 3):
        sandbox.create_event(ORGANIZER, f"Meeting {day}", [ATTENDEE, MEGAN], start=f"2026-12-{day:02d}T09:00:00")
    now = datetime.now(UTC)

    preview = organizer_post(app, {**WINDOW, "preview": True}).body
    queued = organizer_post(app, WINDOW)
    app.drain()
    batch = app.request("GET", f"/api/batches/{queued.body['id']}")

    # 2 + 2 recipients against 3 a day: the second notice waits for the first to leave the 24 hours
    assert preview["recipients"] == 4
    assert datetime.fromisoformat(preview["estimatedCompletion"]) - now > timedelta(hours=24)
    assert batch.status == 202
    assert batch.body["counts"]["cancelled"] == 1
    assert batch.body["counts"]["retrying"] == 1
    assert batch.body["recipients"] == 4
    assert datetime.fromisoformat(batch.body["estimatedCompletion"]) - now > timedelta(hours=24)
    assert len(sandbox.calls("cancel")) == 1
    assert sandbox.state.bounced == []
