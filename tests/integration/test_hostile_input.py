"""Hostile and careless input (issue 15): every input gets a clear answer, no accepted request is
left pending, and no other writer can change or kill a request it does not own.

Each test is one reproduction from the issue or a sibling of one, through the registered
functions, Azurite and the Graph sandbox."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest

from local_runner.graph_sandbox import Fault, GraphSandbox

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest, Response

WINDOW = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}
ROUTES = ["/api/cancellations", f"/api/organizers/{ORGANIZER}/cancellations"]


def organizer_post(app: AppUnderTest, organizer: str, body: Mapping[str, object]) -> Response:
    return app.request("POST", f"/api/organizers/{organizer}/cancellations", body)


# ----- nothing accepted is ever left pending
@pytest.mark.parametrize(("day", "zone"), [("9999-12-31", "UTC"), ("0001-01-01", "Asia/Tokyo")])
def test_occurrence_days_beyond_the_calendar_are_400_at_the_door(
    app: AppUnderTest, meeting: str, day: str, zone: str
) -> None:
    response = app.post({"organizer": ORGANIZER, "eventId": meeting, "occurrenceDate": day, "timeZone": zone})

    assert response.status == 400
    assert response.body["errors"] == [
        {"field": "occurrenceDate", "message": "must be a day between 1900-01-01 and 2999-12-31"}
    ]
    assert app.visible_messages() == 0


def test_a_queue_message_with_such_a_day_fails_at_once_with_its_reason(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    app.put_message(
        {
            "id": "far-9999",
            "organizer": ORGANIZER,
            "eventId": meeting,
            "occurrenceDate": "9999-12-31",
            "timeZone": "UTC",
        }
    )
    app.drain()

    status = app.status("far-9999").body
    assert (status["status"], status["error"]["code"]) == ("failed", "invalidMessage")
    assert "1900-01-01" in status["error"]["message"]
    assert len(app.poison_messages()) == 1
    assert sandbox.calls() == []


def test_an_error_the_code_does_not_expect_ends_failed_on_the_last_delivery(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    # A proxy in front of Graph answering 200 with an HTML page: the lookup cannot read it.
    uid = str(sandbox.state.events[ORGANIZER][meeting]["iCalUId"])
    sandbox.add_fault(Fault(action="raw", status=200, body=b"<html>maintenance</html>", operation="list", times=100))
    response = app.post({"organizer": ORGANIZER, "iCalUId": uid})
    app.drain()

    status = app.status(response.body["id"])
    assert (status.status, status.body["status"]) == (200, "failed")
    assert status.body["error"]["code"]
    assert len(sandbox.calls("list")) == 5  # every delivery tried; the last one recorded why
    assert len(app.poison_messages()) == 1
    assert sandbox.calls("cancel") == []


# ----- other writers cannot change or kill a request
def test_a_queue_message_reusing_a_requests_id_with_its_own_comment_is_an_id_conflict(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    response = app.post({"organizer": ORGANIZER, "eventId": meeting, "comment": "Closed for the holidays."})
    request_id = response.body["id"]
    app.put_message({"id": request_id, "organizer": ORGANIZER, "eventId": meeting, "comment": "Gotcha: click here"})
    app.drain()

    status = app.status(request_id).body
    assert status["status"] == "cancelled"
    assert [call["body"] for call in sandbox.calls("cancel")] == [{"comment": "Closed for the holidays."}]
    assert sandbox.successful_cancels(meeting) == 1
    [poisoned] = app.poison_messages()
    assert "Gotcha" in poisoned


def test_a_queue_message_reusing_a_batch_childs_id_is_an_id_conflict(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    sandbox.create_event(ORGANIZER, "Leaver's 1:1", [ATTENDEE], start="2026-12-03T09:00:00")
    later = sandbox.create_event(ORGANIZER, "Leaver's review", [ATTENDEE], start="2026-12-04T09:00:00")
    batch = organizer_post(app, ORGANIZER, {**WINDOW, "comment": "Adele has left."})
    [child] = [r for r in batch.body["requests"] if r["eventId"] == later]  # its message is paced 2 s later
    app.put_message({"id": child["id"], "organizer": ORGANIZER, "eventId": later, "comment": "Other text"})
    app.drain(wait_for_delayed=6)

    assert app.status(child["id"]).body["status"] == "cancelled"
    assert [call["body"] for call in sandbox.calls("cancel")] == [{"comment": "Adele has left."}] * 2
    assert len(app.poison_messages()) == 1


@pytest.mark.parametrize("door", ["queue", "http"])
def test_an_invalid_message_claiming_a_waiting_requests_id_leaves_it_alone(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str, door: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=429, code="ApplicationThrottled", retry_after=4))
    if door == "queue":
        request_id = "wf-throttled"
        app.put_message({"id": request_id, "organizer": ORGANIZER, "eventId": meeting})
    else:
        request_id = app.post({"organizer": ORGANIZER, "eventId": meeting}).body["id"]
    app.listener.drain_once()
    assert app.status(request_id).body["status"] == "retrying"

    app.put_message({"id": request_id, "organizer": ORGANIZER, "eventId": "has/slash"})
    app.listener.drain_once()
    assert app.status(request_id).body["status"] == "retrying"
    assert len(app.poison_messages()) == 1

    app.drain(wait_for_delayed=15)
    assert app.status(request_id).body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1


# ----- every bad input a 4xx that says what to fix
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("raw", "fragment"),
    [(b"[" * 60000, "nests"), (b'{"organizer":' + b"1" * 60000 + b"}", "digits"), (b'{"from": NaN}', "NaN")],
)
def test_bodies_json_cannot_read_safely_are_400_on_every_route(
    app: AppUnderTest, route: str, raw: bytes, fragment: str
) -> None:
    response = app.request("POST", route, raw=raw)
    assert (response.status, response.body["code"]) == (400, "malformedJson")
    assert fragment in response.body["detail"]


@pytest.mark.parametrize(
    "window",
    [
        {"from": "0001-01-01T00:00:00+14:00", "to": "2026-12-31T00:00:00Z"},
        {"from": "2026-12-01T00:00:00Z", "to": "9999-12-31T23:00:00-05:00"},
    ],
)
def test_offboarding_windows_at_the_datetime_extremes_are_400(
    app: AppUnderTest, sandbox: GraphSandbox, window: dict[str, str]
) -> None:
    response = organizer_post(app, ORGANIZER, {**window, "preview": True})
    assert response.status == 400
    assert "between 1900-01-01 and 2999-12-31" in response.body["detail"]
    assert sandbox.calls() == []


def test_an_organizer_longer_than_a_upn_is_400_on_the_route(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    response = organizer_post(app, "a" * 300 + "@contoso.com", {**WINDOW, "preview": True})
    assert response.status == 400
    assert response.body["errors"] == [{"field": "organizer", "message": "is too long: at most 256 characters"}]
    assert sandbox.calls() == []


def test_an_invalid_organizer_and_a_bad_window_are_listed_together(app: AppUnderTest) -> None:
    response = organizer_post(app, "not-an-address", {"start": "2026-12-01T00:00:00Z"})
    assert response.status == 400
    assert {e["field"] for e in response.body["errors"]} == {"organizer", "from", "to", "start"}


@pytest.mark.parametrize(
    ("organizer", "code"),
    [("nobody@contoso.com", "organizerNotFound"), ("nomailbox@contoso.com", "mailboxNotEnabled")],
)
@pytest.mark.parametrize("preview", [True, False])
def test_an_organizer_graph_does_not_know_is_404_not_a_retry(
    app: AppUnderTest, organizer: str, code: str, preview: bool
) -> None:
    response = organizer_post(app, organizer, {**WINDOW, "preview": preview})
    assert (response.status, response.body["code"]) == (404, code)
    assert "retry-after" not in response.headers
    assert app.visible_messages() == 0


def test_a_replayed_key_of_a_final_request_answers_200_like_a_read(app: AppUnderTest, meeting: str) -> None:
    body = {"organizer": ORGANIZER, "eventId": meeting, "comment": "Closed."}
    first = app.post(body, headers={"Idempotency-Key": "hr-final"})
    app.drain()
    again = app.post(body, headers={"Idempotency-Key": "hr-final"})
    read = app.status(first.body["id"])

    assert (again.status, again.body["status"]) == (200, "cancelled")
    assert again.body == read.body
    assert "retry-after" not in again.headers


def test_the_organizers_case_does_not_change_the_fingerprint(app: AppUnderTest, meeting: str) -> None:
    first = app.post({"organizer": ORGANIZER, "eventId": meeting}, headers={"Idempotency-Key": "hr-case"})
    shouted = app.post({"organizer": ORGANIZER.upper(), "eventId": meeting}, headers={"Idempotency-Key": "hr-case"})

    assert shouted.status == 202
    assert shouted.body["id"] == first.body["id"]
    # A replay of a request still waiting for the worker may send its message once more (issue 16:
    # it may be missing); both copies are the one request, and Graph is asked once.
    app.drain()
    assert app.status(first.body["id"]).body["status"] == "cancelled"
    assert app.sandbox.successful_cancels(meeting) == 1


def test_field_names_from_a_message_never_reach_the_log_raw(
    app: AppUnderTest, caplog: pytest.LogCaptureFixture, meeting: str
) -> None:
    caplog.set_level(logging.INFO)
    forged = "x\nCRITICAL meeting_cancel forged line"
    app.put_message({"id": "wf-forge", "organizer": ORGANIZER, "eventId": meeting, forged: 1})
    app.drain()

    messages = [record.getMessage() for record in caplog.records]
    assert any("x\\nCRITICAL" in message for message in messages)
    assert not any("\nCRITICAL meeting_cancel forged" in message for message in messages)
    assert app.status("wf-forge").body["error"]["code"] == "invalidMessage"


def test_a_preview_is_logged_with_who_whose_and_how_many(
    app: AppUnderTest, sandbox: GraphSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for n in range(3):
        sandbox.create_event(ORGANIZER, f"Meeting {n}", [ATTENDEE], start=f"2026-12-0{n + 1}T09:00:00")
    response = organizer_post(app, ORGANIZER, {**WINDOW, "preview": True})

    assert response.body["count"] == 3
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("preview of")]
    assert ORGANIZER in line
    assert "functionKey" in line
    assert "3 found" in line


def test_a_preview_is_capped_like_a_batch_and_stops_reading_graph(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    from meeting_cancel.batches import MAX_MEETINGS

    for n in range(MAX_MEETINGS + 150):
        sandbox.create_event(
            ORGANIZER, f"Meeting {n}", [ATTENDEE], start=f"2026-12-{1 + n % 28:02d}T{8 + n % 9:02d}:00:00"
        )
    preview = organizer_post(app, ORGANIZER, {**WINDOW, "preview": True})
    batch = organizer_post(app, ORGANIZER, WINDOW)

    for response in (preview, batch):
        assert (response.status, response.body["code"]) == (422, "tooManyMeetings")
    assert len(sandbox.calls("calendarView")) == 2 * 11  # 1,001 meetings are 11 pages of 100, not 12
    assert app.visible_messages() == 0


def test_an_invalid_message_of_thousands_of_fields_still_records_why(app: AppUnderTest, meeting: str) -> None:
    app.put_message({"id": "wf-many", "organizer": ORGANIZER, "eventId": meeting, **{f"f{n}": 1 for n in range(3000)}})
    app.drain()

    status = app.status("wf-many").body
    assert (status["status"], status["error"]["code"]) == ("failed", "invalidMessage")
    assert "more problems not listed" in status["error"]["message"]
    assert len(app.poison_messages()) == 1
