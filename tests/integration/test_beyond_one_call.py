"""Cancelling by what callers know: a window of an organizer's meetings, an iCalUId, a series and a date."""

from __future__ import annotations

import os
from collections.abc import Mapping

from local_runner.azurite import Azurite
from local_runner.graph_sandbox import Fault, GraphSandbox
from meeting_cancel import service

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest, Response, queue_goes_down_after_start

WINDOW = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}


def day(n: int, hour: int = 9) -> str:
    return f"2026-12-{n:02d}T{hour:02d}:00:00"


def ical_uid_of(sandbox: GraphSandbox, event_id: str) -> str:
    return str(sandbox.state.events[ORGANIZER][event_id]["iCalUId"])


def test_cancel_by_ical_uid_finds_the_organizers_copy(app: AppUnderTest, sandbox: GraphSandbox, meeting: str) -> None:
    status = app.submit_and_process({"organizer": ORGANIZER, "iCalUId": ical_uid_of(sandbox, meeting)})

    assert status["status"] == "cancelled"
    assert status["eventId"] == meeting
    assert status["target"].startswith("iCalUId:")
    assert [c["operation"] for c in sandbox.calls()] == ["list", "get", "cancel"]
    assert sandbox.successful_cancels(meeting) == 1


def test_cancel_by_ical_uid_from_a_queue_message(app: AppUnderTest, sandbox: GraphSandbox, meeting: str) -> None:
    app.put_message({"id": "booking-9", "organizer": ORGANIZER, "iCalUId": ical_uid_of(sandbox, meeting)})
    app.drain()
    assert app.status("booking-9").body["status"] == "cancelled"


def test_unknown_ical_uid_fails_without_a_cancel_call(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    status = app.submit_and_process({"organizer": ORGANIZER, "iCalUId": "040000008200E00074C5B7101A82E008DEAD"})

    assert status["status"] == "failed"
    assert status["error"]["code"] == "iCalUIdNotFound"
    assert sandbox.calls("cancel") == []


def test_ambiguous_ical_uid_fails_without_a_cancel_call(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    for subject in ("Copy one", "Copy two"):
        sandbox.create_event(ORGANIZER, subject, [ATTENDEE], ical_uid="shared-uid@booking.example")
    status = app.submit_and_process({"organizer": ORGANIZER, "iCalUId": "shared-uid@booking.example"})

    assert status["error"]["code"] == "iCalUIdAmbiguous"
    assert sandbox.calls("cancel") == []


def test_event_id_and_ical_uid_together_are_refused(app: AppUnderTest, meeting: str) -> None:
    response = app.post({"organizer": ORGANIZER, "eventId": meeting, "iCalUId": "x@y"})
    assert response.status == 400
    assert "not both" in response.body["detail"]


def weekly_series(sandbox: GraphSandbox, days: list[str]) -> tuple[str, list[str]]:
    master = sandbox.create_event(ORGANIZER, "Weekly sync", [ATTENDEE], event_type="seriesMaster", start=days[0])
    return master, sandbox.add_occurrences(ORGANIZER, master, days)


def test_cancel_one_occurrence_by_series_and_date(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    master, occurrences = weekly_series(sandbox, [day(1), day(8), day(15)])
    status = app.submit_and_process(
        {"organizer": ORGANIZER, "eventId": master, "occurrenceDate": "2026-12-08", "timeZone": "Europe/Berlin"}
    )

    assert status["status"] == "cancelled"
    assert status["eventId"] == occurrences[1]
    remaining = set(sandbox.state.events[ORGANIZER])
    assert master in remaining
    assert occurrences[1] not in remaining
    assert {occurrences[0], occurrences[2]} <= remaining
    assert [c["operation"] for c in sandbox.calls()] == ["instances", "get", "cancel"]


def test_the_occurrence_day_is_read_in_the_callers_time_zone(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    master, occurrences = weekly_series(sandbox, ["2026-12-02T23:30:00"])  # 3 December in Berlin
    wrong_day = app.submit_and_process(
        {"organizer": ORGANIZER, "eventId": master, "occurrenceDate": "2026-12-02", "timeZone": "Europe/Berlin"}
    )
    right_day = app.submit_and_process(
        {"organizer": ORGANIZER, "eventId": master, "occurrenceDate": "2026-12-03", "timeZone": "Europe/Berlin"}
    )

    assert wrong_day["error"]["code"] == "occurrenceNotFound"
    assert right_day["status"] == "cancelled"
    assert right_day["eventId"] == occurrences[0]


def test_occurrence_date_needs_a_time_zone(app: AppUnderTest, meeting: str) -> None:
    response = app.post({"organizer": ORGANIZER, "eventId": meeting, "occurrenceDate": "2026-12-08"})
    assert response.status == 400
    assert response.body["errors"][0]["field"] == "timeZone"
    bad_zone = app.post(
        {"organizer": ORGANIZER, "eventId": meeting, "occurrenceDate": "2026-12-08", "timeZone": "Mars/Olympus"}
    )
    assert "IANA" in bad_zone.body["detail"]


def organizer_post(app: AppUnderTest, body: Mapping[str, object], headers: dict[str, str] | None = None) -> Response:
    return app.request("POST", f"/api/organizers/{ORGANIZER}/cancellations", body, headers=headers)


def test_preview_lists_meetings_across_pages_and_changes_nothing(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    for n in range(230):
        sandbox.create_event(ORGANIZER, f"Meeting {n}", [ATTENDEE], start=day(1 + n % 28, 8 + n % 9))
    before = {mailbox: dict(events) for mailbox, events in sandbox.state.events.items()}

    response = organizer_post(app, {**WINDOW, "preview": True})

    assert response.status == 200
    assert response.body["count"] == 230
    assert len(sandbox.calls("calendarView")) == 3  # pages of 100, followed through @odata.nextLink
    assert {m["kind"] for m in response.body["meetings"]} == {"single"}
    assert sandbox.state.events == before
    assert sandbox.calls("cancel") == []
    assert app.visible_messages() == 0


def test_the_window_keeps_only_live_meetings_the_mailbox_organizes(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    kept = sandbox.create_event(ORGANIZER, "Budget review", [ATTENDEE], start=day(3))
    sandbox.create_event(ORGANIZER, "Focus time", [], start=day(4))  # no attendees
    sandbox.create_event("megan.bowen@contoso.com", "Megan's meeting", [ORGANIZER], start=day(5))  # an attendee copy
    gone = sandbox.create_event(ORGANIZER, "Already cancelled", [ATTENDEE], start=day(6))
    sandbox.state.events[ORGANIZER][gone]["isCancelled"] = True
    sandbox.create_event(ORGANIZER, "Budget later", [ATTENDEE], start="2027-02-01T09:00:00")  # outside

    everything = organizer_post(app, {**WINDOW, "preview": True}).body["meetings"]
    budget = organizer_post(app, {**WINDOW, "preview": True, "subjectContains": "BUDGET"}).body["meetings"]

    assert [m["eventId"] for m in everything] == [kept]
    assert [m["subject"] for m in budget] == ["Budget review"]
    assert everything[0]["attendees"] == 1


def test_a_series_overlapping_the_window_is_cancelled_once_through_its_master(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    master, occurrences = weekly_series(sandbox, ["2026-11-24T09:00:00", day(1), day(8), day(15)])
    preview = organizer_post(app, {**WINDOW, "preview": True}).body

    # cancelling the master cancels the whole series, the 24 November occurrence before the window too
    assert preview["meetings"] == [
        {
            "eventId": master,
            "subject": "Weekly sync",
            "start": day(1),
            "attendees": 1,
            "kind": "series",
            "seriesStart": "2026-11-24",
            "seriesEnd": "2026-12-15",
            "seriesRange": "endDate",
            "occurrencesInWindow": 3,
        }
    ]
    assert preview["recipients"] == 1
    queued = organizer_post(app, {**WINDOW, "comment": "Adele has left."})
    assert queued.status == 202
    app.drain(wait_for_delayed=5)

    assert [c["eventId"] for c in sandbox.calls("cancel")] == [master]
    assert not set(occurrences) & set(sandbox.state.events[ORGANIZER])
    assert [n["comment"] for n in sandbox.state.outbox] == ["Adele has left."]


def test_a_batch_with_mixed_outcomes_reports_counts_and_links_each_request(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    ids = [sandbox.create_event(ORGANIZER, f"Meeting {n}", [ATTENDEE], start=day(2 + n)) for n in range(3)]
    sandbox.add_fault(Fault(action="status", status=403, code="ErrorAccessDenied", times=1))

    queued = organizer_post(app, {**WINDOW, "comment": "Cancelled."})
    assert queued.status == 202
    batch_url = queued.headers["location"]
    assert batch_url.endswith(f"/api/batches/{queued.body['id']}")
    assert queued.body["counts"]["queued"] == 3
    assert app.visible_messages() == 3  # no fixed pacing: mailbox slots and the recipient budget pace the sends

    path = "/api/batches/" + queued.body["id"]
    assert app.request("GET", path).status == 202
    app.drain(wait_for_delayed=8)
    final = app.request("GET", path)

    assert final.status == 200
    assert final.body["done"] is True
    assert final.body["counts"]["cancelled"] == 2
    assert final.body["counts"]["failed"] == 1
    assert {r["eventId"] for r in final.body["requests"]} == set(ids)
    failed = [r for r in final.body["requests"] if r["status"] == "failed"]
    assert failed[0]["error"] == "accessDenied"
    for child in final.body["requests"]:
        assert app.status(child["id"]).body["batchId"] == queued.body["id"]


def test_the_same_batch_key_queues_nothing_new(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    sandbox.create_event(ORGANIZER, "Once", [ATTENDEE], start=day(2))
    first = organizer_post(app, {**WINDOW}, headers={"Idempotency-Key": "leaver-42"})
    again = organizer_post(app, {**WINDOW}, headers={"Idempotency-Key": "leaver-42"})
    other = organizer_post(app, {**WINDOW, "comment": "x"}, headers={"Idempotency-Key": "leaver-42"})

    assert first.body["id"] == again.body["id"]
    assert app.queue.get_queue_properties().approximate_message_count == 1
    assert other.status == 422


def test_window_rules(app: AppUnderTest) -> None:
    backwards = organizer_post(app, {"from": "2026-12-31T00:00:00Z", "to": "2026-12-01T00:00:00Z"})
    naive = organizer_post(app, {"from": "2026-12-01T00:00:00", "to": "2026-12-31T00:00:00Z"})
    outsider = app.request("POST", "/api/organizers/ceo@fabrikam.com/cancellations", WINDOW)

    assert backwards.status == 400
    assert backwards.body["errors"][0]["field"] == "to"
    assert "offset" in naive.body["detail"]
    assert outsider.status == 403


def test_a_batch_retried_after_a_queue_outage_cancels_every_meeting(
    app: AppUnderTest, sandbox: GraphSandbox, azurite: Azurite
) -> None:
    ids = [sandbox.create_event(ORGANIZER, f"Meeting {n}", [ATTENDEE], start=day(2 + n)) for n in range(2)]
    working = os.environ["AzureWebJobsStorage"]
    queue_goes_down_after_start(azurite)

    failed = organizer_post(app, WINDOW, headers={"Idempotency-Key": "leaver-7"})
    os.environ["AzureWebJobsStorage"] = working
    service.reset()
    retried = organizer_post(app, WINDOW, headers={"Idempotency-Key": "leaver-7"})
    app.drain(wait_for_delayed=6)

    assert failed.status == 503
    assert retried.status == 202
    assert [sandbox.successful_cancels(event_id) for event_id in ids] == [1, 1]
    assert app.request("GET", f"/api/batches/{retried.body['id']}").body["counts"]["cancelled"] == 2


def test_a_replayed_batch_is_answered_before_graph_is_asked(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    """A retried batch POST must not depend on Graph: the batch exists, so it is answered from
    storage, even while Graph cannot list the calendar (it used to list first and answer 502)."""
    sandbox.create_event(ORGANIZER, "Once", [ATTENDEE], start=day(2))
    first = organizer_post(app, WINDOW, headers={"Idempotency-Key": "leaver-99"})
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=5, operation="calendarView"))
    again = organizer_post(app, WINDOW, headers={"Idempotency-Key": "leaver-99"})

    assert first.status == again.status == 202
    assert again.body["id"] == first.body["id"]
    assert len(sandbox.calls("calendarView")) == 1
    assert app.queue.get_queue_properties().approximate_message_count == 1
