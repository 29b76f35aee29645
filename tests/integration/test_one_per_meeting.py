"""Exactly once per meeting, not per tracking id: a second request for a meeting whose cancellation
is pending or done follows the first (same outcome, no second Graph call), whichever door it came
through, and a first request that failed for a reason that may pass does not hold a later one back.

Through the local host with Azurite and the Graph sandbox; each test counts the cancel calls the
sandbox received and the notices attendees got."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import requests

from local_runner.graph_sandbox import Fault, GraphSandbox, Limits
from meeting_cancel import service, steps
from meeting_cancel.records import utcnow

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest

SECOND_ATTENDEE = "megan.bowen@contoso.com"
WINDOW = {"from": "2026-12-01T00:00:00Z", "to": "2026-12-31T00:00:00Z"}


def statuses(app: AppUnderTest, *ids: str) -> list[dict[str, Any]]:
    return [dict(app.status(request_id).body) for request_id in ids]


def notices_to(sandbox: GraphSandbox, address: str) -> int:
    with sandbox.state.lock:
        return sum(1 for notice in sandbox.state.outbox if notice["to"] == address)


def owner_and_follower(views: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request that called Graph and the one that followed it, whichever was processed first."""
    followers = [v for v in views if v.get("follows")]
    owners = [v for v in views if not v.get("follows")]
    assert len(followers) == 1, views
    assert len(owners) == 1, views
    assert followers[0]["follows"] == owners[0]["id"]
    return owners[0], followers[0]


def test_two_posts_without_a_key_for_one_meeting_make_one_cancel_and_both_end_cancelled(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    body = {"organizer": ORGANIZER, "eventId": meeting, "comment": "Closed."}
    first, second = app.post(body), app.post(body)
    assert first.status == second.status == 202
    assert first.body["id"] != second.body["id"]  # two requests: nothing tied them together at the door

    app.drain(wait_for_delayed=10)

    owner, follower = owner_and_follower(statuses(app, first.body["id"], second.body["id"]))
    assert owner["status"] == follower["status"] == "cancelled"
    assert follower["attempts"] == 0
    assert owner["id"] in follower["resolution"]
    assert len(sandbox.calls("cancel")) == 1
    assert notices_to(sandbox, ATTENDEE) == 1
    assert app.visible_messages() == 0


def test_a_later_request_for_a_cancelled_meeting_follows_at_once_without_calling_graph(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    done = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})
    assert done["status"] == "cancelled"
    calls_before = len(sandbox.calls())

    again = app.submit_and_process({"organizer": ORGANIZER.upper(), "eventId": meeting})  # case does not matter

    assert again["status"] == "cancelled"
    assert again["follows"] == done["id"]
    assert len(sandbox.calls()) == calls_before  # not even a read
    assert sandbox.successful_cancels() == 1


def test_one_request_by_queue_and_one_by_http_make_one_cancel(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    app.put_message({"id": "from-workflow", "organizer": ORGANIZER, "eventId": meeting})
    posted = app.post({"organizer": ORGANIZER, "eventId": meeting})

    app.drain(wait_for_delayed=10)

    owner, follower = owner_and_follower(statuses(app, "from-workflow", posted.body["id"]))
    assert owner["status"] == follower["status"] == "cancelled"
    assert sandbox.successful_cancels() == 1
    assert len(sandbox.calls("cancel")) == 1


def test_a_batch_child_and_a_single_request_for_one_meeting_make_one_cancel(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    event_id = sandbox.create_event(ORGANIZER, "Leaver's one-to-one", [ATTENDEE], start="2026-12-02T09:00:00")
    batch = app.request("POST", f"/api/organizers/{ORGANIZER}/cancellations", WINDOW)
    assert batch.status == 202
    single = app.post({"organizer": ORGANIZER, "eventId": event_id})

    app.drain(wait_for_delayed=10)

    child_id = batch.body["requests"][0]["id"]
    owner, follower = owner_and_follower(statuses(app, child_id, single.body["id"]))
    assert owner["status"] == follower["status"] == "cancelled"
    assert app.request("GET", f"/api/batches/{batch.body['id']}").body["counts"]["cancelled"] == 1
    assert sandbox.successful_cancels(event_id) == 1


def test_requests_naming_the_meeting_by_ical_uid_link_once_resolved(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    ical_uid = str(sandbox.state.events[ORGANIZER][meeting]["iCalUId"])
    sandbox.add_fault(Fault(action="status", status=429, code="ApplicationThrottled", retry_after=1))
    by_id = app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.listener.drain_once()  # throttled: its cancellation is pending, the event still there
    by_uid = app.post({"organizer": ORGANIZER, "iCalUId": ical_uid})

    app.drain(wait_for_delayed=10)

    owner, follower = owner_and_follower(statuses(app, by_id.body["id"], by_uid.body["id"]))
    assert (owner["id"], follower["id"]) == (by_id.body["id"], by_uid.body["id"])
    assert follower["eventId"] == meeting  # resolved first, then linked
    assert owner["status"] == follower["status"] == "cancelled"
    assert sandbox.successful_cancels() == 1


def test_two_workers_racing_for_one_meeting_make_one_graph_call(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """Both messages are taken in one batch and run at once on two threads; the meeting's row is
    written with an ETag condition, so one of them follows."""
    sandbox.state.limits = Limits(latency_seconds=(0.5, 0.5))
    app.put_message({"id": "racer-a", "organizer": ORGANIZER, "eventId": meeting})
    app.put_message({"id": "racer-b", "organizer": ORGANIZER, "eventId": meeting})
    assert app.listener.drain_once() == 2  # both in flight together

    assert len(sandbox.calls("cancel")) == 1
    app.drain(wait_for_delayed=10)
    owner, follower = owner_and_follower(statuses(app, "racer-a", "racer-b"))
    assert owner["status"] == follower["status"] == "cancelled"


def test_where_overlapping_cancels_would_both_apply_attendees_get_one_notice(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """A Graph double that applies every cancel it receives (the event comes back after each one):
    without linking, each request would mail every attendee."""
    event = dict(sandbox.state.events[ORGANIZER][meeting])

    def event_comes_back() -> None:
        with sandbox.state.lock:
            sandbox.state.events[ORGANIZER][meeting] = dict(event)

    sandbox.add_fault(Fault(action="hook_after_apply", hook=event_comes_back, times=100))
    sandbox.state.limits = Limits(latency_seconds=(0.3, 0.3))
    ids = [app.post({"organizer": ORGANIZER, "eventId": meeting}).body["id"] for _ in range(3)]
    app.put_message({"id": "by-queue", "organizer": ORGANIZER, "eventId": meeting})

    app.drain(wait_for_delayed=10)

    assert [view["status"] for view in statuses(app, *ids, "by-queue")] == ["cancelled"] * 4
    assert notices_to(sandbox, ATTENDEE) == 1
    assert notices_to(sandbox, SECOND_ATTENDEE) == 1

    # The double really applies a second cancel: sent straight to it, the attendees are mailed again.
    token = sandbox.issue_token()["access_token"]
    again = requests.post(
        f"{sandbox.graph_base_url}/users/{ORGANIZER}/events/{meeting}/cancel",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert again.status_code == 202
    assert notices_to(sandbox, ATTENDEE) == 2


def test_a_first_request_throttled_until_it_gave_up_is_taken_over_by_a_later_one(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    os.environ["THROTTLE_MAX_WAIT_SECONDS"] = "3"
    service.reset()
    sandbox.add_fault(Fault(action="status", status=429, code="ApplicationThrottled", retry_after=30))
    first = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})
    assert first["status"] == "failed"
    assert first["error"]["code"] == "throttled"
    service.reset()  # later: this process no longer waits out the first request's Retry-After

    later = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert later["status"] == "cancelled"
    assert "follows" not in later
    assert sandbox.successful_cancels() == 1
    assert service.current().meetings.owner(ORGANIZER, meeting) == later["id"]
    assert [call["status"] for call in sandbox.calls("cancel")] == [429, 202]


def test_a_first_request_that_found_no_such_event_is_shared_without_a_second_call(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    missing = sandbox.create_event(ORGANIZER, "Already gone", [ATTENDEE])
    with sandbox.state.lock:
        del sandbox.state.events[ORGANIZER][missing]
    first = app.submit_and_process({"organizer": ORGANIZER, "eventId": missing})
    assert first["error"]["code"] == "eventNotFound"

    later = app.submit_and_process({"organizer": ORGANIZER, "eventId": missing})

    assert later["status"] == "failed"
    assert later["follows"] == first["id"]
    assert later["error"]["code"] == "eventNotFound"
    # the first request's read before its cancel met the 404; the later request makes no call
    assert [c["operation"] for c in sandbox.calls()] == ["get"]


def test_taking_over_from_a_request_that_may_have_cancelled_reads_the_event_first(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """The first request's cancel was applied but its answer lost, and every later read failed
    until it gave up (poison, "may have been sent"). A later request must not cancel blindly."""
    sandbox.add_fault(Fault(action="reset_after_apply", times=1))
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=4, operation="get"))
    first = app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.drain()
    gave_up = app.status(first.body["id"]).body
    assert gave_up["status"] == "failed"
    assert gave_up["resolution"].startswith("the last attempt's outcome is unknown")
    assert len(app.poison_messages()) == 1

    later = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert later["status"] == "cancelled"
    assert later["resolution"].startswith("verified")
    assert len(sandbox.calls("cancel")) == 1
    assert notices_to(sandbox, ATTENDEE) == 1


def test_a_follower_waits_while_the_owner_is_backing_off_and_ends_with_it(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=429, code="ApplicationThrottled", retry_after=2))
    first = app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.listener.drain_once()
    assert app.status(first.body["id"]).body["status"] == "retrying"

    second = app.post({"organizer": ORGANIZER, "eventId": meeting})
    app.listener.drain_once()
    waiting = app.status(second.body["id"]).body
    assert waiting["status"] == "queued"
    assert waiting["follows"] == first.body["id"]

    deadline = time.monotonic() + 20
    while app.status(second.body["id"]).body["status"] != "cancelled" and time.monotonic() < deadline:
        app.drain(wait_for_delayed=1)
    assert [v["status"] for v in statuses(app, first.body["id"], second.body["id"])] == ["cancelled"] * 2
    assert sandbox.successful_cancels() == 1


def test_a_row_naming_a_request_whose_record_is_not_stored_yet_is_waited_for_then_taken_over(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """A fresh queue request holds its meeting one storage call before its record exists (accept
    and claim are one insert). A second request that reads the row in that moment must not take
    the meeting over; once the row is older than the grace, its holder is taken to have died
    before storing anything, and the event is read before the cancel."""
    current = service.current()
    current.meetings.take(ORGANIZER, meeting, "holder-storing-its-record")
    app.put_message({"id": "second-request", "organizer": ORGANIZER, "eventId": meeting})

    assert app.listener.drain_once() == 1
    waiting = app.status("second-request").body
    assert (waiting["status"], waiting["follows"]) == ("queued", "holder-storing-its-record")
    assert sandbox.calls("cancel") == []

    current.clock = lambda: utcnow() + timedelta(seconds=steps.OWNER_RECORD_GRACE_SECONDS + 5)
    app.drain(wait_for_delayed=10)

    done = app.status("second-request").body
    assert done["status"] == "cancelled"
    assert "follows" not in done
    # the read that looks for a cancel the holder may have sent, the attendee read, one cancel
    assert [c["operation"] for c in sandbox.calls()] == ["get", "get", "cancel"]
    assert current.meetings.owner(ORGANIZER, meeting) == "second-request"


def test_a_holder_whose_claim_was_stored_too_late_sends_nothing_and_holds_again_later(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """The other half of the grace: the holder calls Graph only if its claim was stored soon
    enough after it held the row that nobody can have taken the meeting over meanwhile."""
    current = service.current()
    started = utcnow()
    ticks = iter(range(1_000))
    current.clock = lambda: started + next(ticks) * timedelta(seconds=steps.HOLD_TO_CLAIM_MAX_SECONDS)
    app.put_message({"id": "slow-holder", "organizer": ORGANIZER, "eventId": meeting})

    assert app.listener.drain_once() == 1
    assert app.status("slow-holder").body["status"] == "retrying"
    assert sandbox.calls("cancel") == []

    current.clock = lambda: utcnow() + timedelta(days=1)  # past the back-off the jumping clock recorded
    app.drain(wait_for_delayed=10)
    assert app.status("slow-holder").body["status"] == "cancelled"
    assert sandbox.successful_cancels() == 1
