"""The service against Graph as it really behaves (the sandbox imitates each behaviour, with its
source in local_runner/graph_sandbox/calendar.py): occurrences by their original date, verification
by shape, error codes a caller can act on, a fresh GUID client-request-id per call, and the
mailbox's recipient rate limit."""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime

import pytest
import requests

from local_runner.graph_sandbox import Fault, GraphSandbox
from meeting_cancel import service

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest

MEGAN = "megan.bowen@contoso.com"


def berlin_organizer(sandbox: GraphSandbox) -> None:
    """The organizer's mailbox in Berlin: its all-day events occupy Berlin's days."""
    sandbox.state.mailboxes[ORGANIZER].time_zone = "Europe/Berlin"


def all_day_series(sandbox: GraphSandbox, dates: list[str]) -> tuple[str, list[str]]:
    master = sandbox.create_event(
        ORGANIZER, "Support rota", [ATTENDEE], event_type="seriesMaster", start=dates[0] + "T00:00:00", all_day=True
    )
    return master, sandbox.add_occurrences(ORGANIZER, master, dates)


def occurrence(master: str, day: str, zone: str = "Europe/Berlin") -> dict[str, str]:
    return {"organizer": ORGANIZER, "eventId": master, "occurrenceDate": day, "timeZone": zone}


# ----- 1. one occurrence by series and date
def test_an_all_day_occurrence_is_found_by_its_date_not_with_the_day_before(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    """Fails on the old lookup: a one-day window overlaps the previous day's all-day occurrence too
    (it ends at this day's midnight, and Graph includes edges), which made it occurrenceAmbiguous."""
    berlin_organizer(sandbox)
    master, ids = all_day_series(sandbox, ["2026-12-03", "2026-12-04", "2026-12-05"])

    status = app.submit_and_process(occurrence(master, "2026-12-04"))

    assert status["status"] == "cancelled", status
    assert status["eventId"] == ids[1]
    assert {ids[0], ids[2], master} <= set(sandbox.state.events[ORGANIZER])
    assert ids[1] not in sandbox.state.events[ORGANIZER]


def test_a_moved_occurrence_is_found_by_the_day_it_was_on(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    master = sandbox.create_event(ORGANIZER, "Weekly sync", [ATTENDEE], event_type="seriesMaster")
    ids = sandbox.add_occurrences(ORGANIZER, master, ["2026-12-08T10:00:00", "2026-12-15T10:00:00"])
    sandbox.move_occurrence(ORGANIZER, ids[1], "2026-12-17T10:00:00")  # Tuesday's meeting on Thursday

    new_day = app.submit_and_process(occurrence(master, "2026-12-17"))
    original_day = app.submit_and_process(occurrence(master, "2026-12-15"))

    assert new_day["error"]["code"] == "occurrenceNotFound"
    assert original_day["status"] == "cancelled"
    assert original_day["eventId"] == ids[1]
    assert ids[0] in sandbox.state.events[ORGANIZER]


def test_a_meeting_across_midnight_belongs_to_the_day_it_starts(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    master = sandbox.create_event(ORGANIZER, "Night shift handover", [ATTENDEE], event_type="seriesMaster")
    # 23:00-01:00 in Berlin (22:00-00:00 UTC): it overlaps the next Berlin day too
    ids = sandbox.add_occurrences(ORGANIZER, master, ["2026-12-08T22:00:00", "2026-12-09T22:00:00"], minutes=120)

    status = app.submit_and_process(occurrence(master, "2026-12-09"))

    assert status["eventId"] == ids[1]


def test_an_occurrence_without_original_start_is_taken_at_its_start(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    """Users report originalStart missing or null in lists (microsoft-graph-docs#4353)."""
    sandbox.state.omit_original_start = True
    master = sandbox.create_event(ORGANIZER, "Weekly sync", [ATTENDEE], event_type="seriesMaster")
    ids = sandbox.add_occurrences(ORGANIZER, master, ["2026-12-08T10:00:00", "2026-12-15T10:00:00"])

    status = app.submit_and_process(occurrence(master, "2026-12-15"))

    assert status["eventId"] == ids[1]


def test_a_windows_time_zone_name_is_accepted_and_kept_as_its_iana_key(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    master = sandbox.create_event(ORGANIZER, "Weekly sync", [ATTENDEE], event_type="seriesMaster")
    ids = sandbox.add_occurrences(ORGANIZER, master, ["2026-12-08T23:30:00"])  # 9 December in Berlin

    status = app.submit_and_process(occurrence(master, "2026-12-09", zone="W. Europe Standard Time"))
    unknown = app.post(occurrence(master, "2026-12-09", zone="W. Europa Standard Time"))

    assert status["eventId"] == ids[0]
    assert status["target"].endswith("[Europe/Berlin]")
    assert unknown.status == 400
    assert "W. Europe Standard Time" in unknown.body["detail"]


# ----- 2. verifying after an unknown outcome, by shape
def test_an_occurrence_with_an_unknown_outcome_is_verified_in_its_masters_instances(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    master = sandbox.create_event(ORGANIZER, "Weekly sync", [ATTENDEE], event_type="seriesMaster")
    ids = sandbox.add_occurrences(ORGANIZER, master, ["2026-12-08T10:00:00", "2026-12-15T10:00:00"])
    sandbox.add_fault(Fault(action="reset_after_apply"))

    status = app.submit_and_process({"organizer": ORGANIZER, "eventId": ids[0]})

    assert status["status"] == "cancelled"
    assert status["resolution"].startswith("verified gone")
    assert "notified" not in status["resolution"]
    assert [c["operation"] for c in sandbox.calls()] == ["get", "cancel", "instances"]
    assert sandbox.calls("instances")[0]["path"].endswith(f"/events/{master.replace('=', '%3D')}/instances")
    assert sandbox.successful_cancels() == 1
    assert master in sandbox.state.events[ORGANIZER]
    assert any(
        entry.startswith(f"OID.{master}.") for entry in sandbox.state.events[ORGANIZER][master]["cancelledOccurrences"]
    )


def test_a_cancelled_meeting_is_gone_by_its_rest_id_and_still_found_by_its_immutable_id(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """What verification rests on: cancel moves the item to Deleted Items; the REST id changes,
    the immutable id does not (outlook-immutable-id.md)."""
    immutable = sandbox.immutable_id_of(ORGANIZER, meeting)
    assert app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})["status"] == "cancelled"

    token = sandbox.issue_token()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "client-request-id": str(uuid.uuid4())}
    base = f"{sandbox.graph_base_url}/users/{ORGANIZER}/events"
    by_rest_id = requests.get(f"{base}/{meeting}", headers=headers, timeout=5)
    by_immutable_id = requests.get(
        f"{base}/{immutable}", headers={**headers, "Prefer": 'IdType="ImmutableId"'}, timeout=5
    )

    assert (by_rest_id.status_code, by_rest_id.json()["error"]["code"]) == (404, "ErrorItemNotFound")
    assert (by_immutable_id.status_code, by_immutable_id.json()["id"]) == (200, immutable)


def test_an_immutable_id_is_refused_with_the_rest_id_to_send(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    immutable = sandbox.immutable_id_of(ORGANIZER, meeting)

    refused = app.submit_and_process({"organizer": ORGANIZER, "eventId": immutable})
    accepted = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert refused["error"]["code"] == "immutableIdNotSupported"
    assert meeting in refused["error"]["message"]
    assert accepted["status"] == "cancelled"
    assert sandbox.successful_cancels() == 1


# ----- 3. error codes a caller can act on
@pytest.mark.parametrize(
    ("code", "message", "ours"),
    [
        ("ErrorAccessDenied", "Access is denied. Check credentials and try again.", "permissionMissing"),
        ("ErrorAccessDenied", "Access to OData is disabled.", "mailboxOutsideAccessPolicy"),
        (
            "ErrorAccessDenied",
            "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            "mailboxOutsideAccessPolicy",
        ),
    ],
)
def test_the_two_403s_are_told_apart(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str, code: str, message: str, ours: str
) -> None:
    sandbox.add_fault(Fault(action="status", operation="get", status=403, code=code, message=message))
    status = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert status["error"]["code"] == ours
    assert message in status["error"]["message"]
    assert ("Calendars.ReadWrite" in status["error"]["message"]) == (ours == "permissionMissing")
    assert sandbox.calls("cancel") == []


def test_a_mailbox_without_a_licence_says_to_cancel_before_removing_it(app: AppUnderTest) -> None:
    status = app.submit_and_process({"organizer": "nomailbox@contoso.com", "eventId": "AAMkAAA="})

    assert status["error"]["code"] == "mailboxNotEnabled"
    assert "before removing the leaver's licence" in status["error"]["message"]


def test_graph_refuses_a_client_request_id_that_is_not_a_guid(sandbox: GraphSandbox) -> None:
    token = sandbox.issue_token()["access_token"]
    answer = requests.get(
        f"{sandbox.graph_base_url}/users/{ORGANIZER}",
        headers={"Authorization": f"Bearer {token}", "client-request-id": "offboarding-4711"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert "not a guid" in answer.json()["error"]["message"]


# ----- 4. the recipient rate limit
def test_past_the_recipient_budget_a_request_waits_instead_of_bouncing(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    os.environ["MAILBOX_RECIPIENTS_PER_DAY"] = "3"
    service.reset()
    first = sandbox.create_event(ORGANIZER, "First", [ATTENDEE, MEGAN])
    second = sandbox.create_event(ORGANIZER, "Second", [ATTENDEE, MEGAN])

    sent = app.submit_and_process({"organizer": ORGANIZER, "eventId": first})
    waiting = app.submit_and_process({"organizer": ORGANIZER, "eventId": second})

    assert (sent["status"], sent["recipients"]) == ("cancelled", 2)
    assert waiting["status"] == "retrying"
    assert waiting["lastError"]["code"] == "recipientLimitReached"
    assert (datetime.fromisoformat(waiting["nextAttemptAt"]) - datetime.fromisoformat(waiting["updatedAt"])).days >= 0
    assert (
        datetime.fromisoformat(waiting["nextAttemptAt"]).timestamp()
        - datetime.fromisoformat(waiting["updatedAt"]).timestamp()
        > 23 * 3600
    )
    assert [c["eventId"] for c in sandbox.calls("cancel")] == [first]
    assert app.visible_messages() == 0  # the delayed copy is on the queue, invisible until then
    assert sandbox.state.bounced == []


def test_a_reservation_is_given_back_when_the_cancel_was_certainly_not_sent(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    os.environ["MAILBOX_RECIPIENTS_PER_DAY"] = "2"
    service.reset()
    refused = sandbox.create_event(ORGANIZER, "Refused", [ATTENDEE, MEGAN])
    later = sandbox.create_event(ORGANIZER, "Later", [ATTENDEE, MEGAN])
    sandbox.add_fault(Fault(action="status", status=403, code="ErrorAccessDenied", message="Access is denied."))

    assert app.submit_and_process({"organizer": ORGANIZER, "eventId": refused})["status"] == "failed"
    assert app.submit_and_process({"organizer": ORGANIZER, "eventId": later})["status"] == "cancelled"


def test_notices_past_exchanges_limit_bounce_while_the_meeting_is_gone(sandbox: GraphSandbox) -> None:
    """Why the budget exists: Graph accepts the cancel; the notices past the limit bounce."""
    sandbox.state.limits.recipients_per_day = 1
    meeting = sandbox.create_event(ORGANIZER, "Too many", [ATTENDEE, MEGAN])
    token = sandbox.issue_token()["access_token"]
    answer = requests.post(
        f"{sandbox.graph_base_url}/users/{ORGANIZER}/events/{meeting}/cancel",
        headers={"Authorization": f"Bearer {token}", "client-request-id": str(uuid.uuid4())},
        json={},
        timeout=5,
    )
    assert answer.status_code == 202
    assert meeting not in sandbox.state.events[ORGANIZER]
    assert sandbox.state.outbox == []
    assert len(sandbox.state.bounced) == 2


def test_the_sandbox_refuses_a_fifth_concurrent_call_to_one_mailbox(sandbox: GraphSandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    sandbox.state.limits.latency_seconds = (0.5, 0.5)
    token = sandbox.issue_token()["access_token"]

    def read(_: int) -> requests.Response:
        return requests.get(
            f"{sandbox.graph_base_url}/users/{ORGANIZER}/events",
            headers={"Authorization": f"Bearer {token}", "client-request-id": str(uuid.uuid4())},
            timeout=5,
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(read, range(6)))
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 2
    assert refused[0].json()["error"] == {
        **refused[0].json()["error"],
        "code": "ApplicationThrottled",
        "message": "Application is over its MailboxConcurrency limit.",
    }
    assert refused[0].headers["Retry-After"]


def test_status_records_each_graph_call_with_both_ids(app: AppUnderTest, sandbox: GraphSandbox, meeting: str) -> None:
    status = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})
    sent = {c["clientRequestId"]: c for c in sandbox.calls()}

    assert [c["operation"] for c in status["graphCalls"]] == ["read", "cancel"]
    for call in status["graphCalls"]:
        assert call["client-request-id"] in sent
        assert call["request-id"]
    assert json.dumps(status).count(status["id"]) == 1  # the tracking id is never sent as a Graph id


def test_an_occurrence_by_its_original_date_from_a_queue_message(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    berlin_organizer(sandbox)
    master, ids = all_day_series(sandbox, ["2026-12-03", "2026-12-04"])
    app.put_message({"id": "rota-4", **occurrence(master, "2026-12-04", zone="W. Europe Standard Time")})
    app.drain()

    status = app.status("rota-4").body
    assert (status["status"], status["eventId"]) == ("cancelled", ids[1])
    assert status["target"].endswith("@2026-12-04[Europe/Berlin]")
