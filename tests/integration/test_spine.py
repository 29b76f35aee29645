"""The spine end to end through the registered functions: intake, status, worker, Graph."""

from __future__ import annotations

import uuid

import pytest

from local_runner.graph_sandbox import Fault, GraphSandbox

from .conftest import ATTENDEE, ORGANIZER
from .support import AppUnderTest, b64


def test_request_through_http_and_queue_functions_is_cancelled_with_one_graph_call(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    response = app.post({"organizer": ORGANIZER, "eventId": meeting, "comment": "The room is closed."})

    assert response.status == 202
    assert response.body["status"] == "queued"
    request_id = response.body["id"]
    assert response.headers["location"] == f"{app.http.base_url}/api/cancellations/{request_id}"
    assert int(response.headers["retry-after"]) >= 1
    pending = app.status(request_id)
    assert pending.status == 202
    assert pending.headers["location"].endswith(f"/api/cancellations/{request_id}")

    assert app.drain() == 1

    final = app.status(request_id)
    assert final.status == 200
    assert final.body["status"] == "cancelled"
    assert sandbox.successful_cancels(meeting) == 1
    assert len(sandbox.calls("cancel")) == 1
    notices = sandbox.state.outbox
    assert sorted(n["to"] for n in notices) == [ATTENDEE, "megan.bowen@contoso.com"]
    assert {n["comment"] for n in notices} == {"The room is closed."}


def test_location_never_carries_the_function_key(app: AppUnderTest, meeting: str) -> None:
    response = app.request("POST", "/api/cancellations?code=secret-key", {"organizer": ORGANIZER, "eventId": meeting})
    assert response.status == 202
    assert "code=" not in response.headers["location"]
    assert "secret-key" not in response.headers["location"]


def test_unknown_id_is_404_problem(app: AppUnderTest) -> None:
    response = app.status("no-such-request")
    assert response.status == 404
    assert response.mimetype == "application/problem+json"
    assert response.body["code"] == "notFound"


def test_health_is_ok(app: AppUnderTest) -> None:
    response = app.request("GET", "/api/health")
    assert (response.status, response.body) == (200, {"status": "ok"})


def test_graph_call_carries_tracking_id_user_agent_and_encoded_segments(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    event_id = sandbox.create_event("a+b@contoso.com", "Plus sign", [ATTENDEE])
    status = app.submit_and_process({"organizer": "a+b@contoso.com", "eventId": event_id})

    assert status["status"] == "cancelled"
    [call] = sandbox.calls("cancel")
    encoded_id = event_id.replace("=", "%3D")
    assert call["path"] == f"/v1.0/users/a%2Bb%40contoso.com/events/{encoded_id}/cancel"
    # a fresh GUID per Graph call (Graph's best practices), never the caller's tracking id; the
    # status lists each call with the GUID sent and Graph's request-id
    assert call["clientRequestId"] != status["id"]
    assert uuid.UUID(call["clientRequestId"]).version == 4
    ids = {c["clientRequestId"] for c in sandbox.calls()}
    assert len(ids) == len(sandbox.calls())
    shown = {c["operation"]: c for c in status["graphCalls"]}
    assert shown["cancel"]["client-request-id"] == call["clientRequestId"]
    assert shown["cancel"]["status"] == 202
    assert shown["cancel"]["request-id"]
    assert call["userAgent"].startswith("meeting-cancel-service/")


def test_without_comment_graph_gets_an_empty_object_never_an_empty_comment(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    status = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert status["status"] == "cancelled"
    assert [c["body"] for c in sandbox.calls("cancel")] == [{}]
    assert {n["comment"] for n in sandbox.state.outbox} == {None}


def test_one_token_request_serves_many_messages(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    ids = [sandbox.create_event(ORGANIZER, f"Meeting {n}", [ATTENDEE]) for n in range(6)]
    for event_id in ids:
        assert app.post({"organizer": ORGANIZER, "eventId": event_id}).status == 202
    app.drain()

    assert sandbox.successful_cancels() == 6
    assert sandbox.state.token_requests == 1


@pytest.mark.parametrize("base64_encoded", [False, True], ids=["plain", "base64"])
def test_queue_messages_in_plain_text_and_base64_are_processed(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str, base64_encoded: bool
) -> None:
    app.put_message(
        {"id": "workflow-42", "organizer": ORGANIZER, "eventId": meeting, "comment": "Moved."},
        base64_encoded=base64_encoded,
    )
    app.drain()

    status = app.status("workflow-42")
    assert (status.status, status.body["status"]) == (200, "cancelled")
    assert sandbox.successful_cancels(meeting) == 1


def test_queue_message_without_id_is_tracked_by_its_message_id(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    app.put_message({"organizer": ORGANIZER, "eventId": meeting})
    [message] = app.queue.peek_messages()
    app.drain()

    assert app.status(message.id).body["status"] == "cancelled"


@pytest.mark.parametrize("text", ["not json at all", b64("{broken"), "[1, 2]", '{"organizer": 5}'])
def test_unreadable_or_invalid_message_goes_to_poison_at_once(
    app: AppUnderTest, sandbox: GraphSandbox, text: str
) -> None:
    app.put_message(text)
    app.drain()

    assert app.poison_messages() == [text]
    assert app.visible_messages() == 0
    assert sandbox.calls() == []


def test_invalid_message_with_an_id_records_why_it_failed(app: AppUnderTest, sandbox: GraphSandbox) -> None:
    app.put_message({"id": "wf-7", "organizer": ORGANIZER, "eventId": "has/slash"})
    app.drain()

    status = app.status("wf-7")
    assert status.body["status"] == "failed"
    assert status.body["error"]["code"] == "invalidMessage"
    assert "translateExchangeIds" in status.body["error"]["message"]
    assert len(app.poison_messages()) == 1


def test_duplicate_delivery_of_a_finished_request_calls_graph_once(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    message = {"id": "dup-1", "organizer": ORGANIZER, "eventId": meeting}
    app.put_message(message)
    app.drain()
    app.put_message(message)
    app.drain()

    assert app.status("dup-1").body["status"] == "cancelled"
    assert len(sandbox.calls("cancel")) == 1
    assert app.visible_messages() == 0


def test_id_reused_for_another_meeting_is_poisoned_without_touching_the_first(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    other = sandbox.create_event(ORGANIZER, "Other", [ATTENDEE])
    app.put_message({"id": "same", "organizer": ORGANIZER, "eventId": meeting})
    app.drain()
    app.put_message({"id": "same", "organizer": ORGANIZER, "eventId": other})
    app.drain()

    assert app.status("same").body["eventId"] == meeting
    assert sandbox.successful_cancels(other) == 0
    assert len(app.poison_messages()) == 1


def test_attendee_copy_fails_with_the_organizer_error_after_one_call(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    attendee_copy = next(e["id"] for e in sandbox.state.events[ATTENDEE].values())
    status = app.submit_and_process({"organizer": ATTENDEE, "eventId": attendee_copy})

    # the read before the cancel shows isOrganizer false: Graph would refuse with a 400 whose code
    # it does not document (event-cancel.md), so nothing is sent
    assert status["status"] == "failed"
    assert status["error"]["code"] == "notOrganizer"
    assert "organizer" in status["error"]["message"]
    assert status["attempts"] == 0
    assert sandbox.calls("cancel") == []


def test_a_400_from_cancel_is_not_organizer_when_the_event_says_so_whatever_the_code(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    """A message that carries the attendee count is not read first; the 400 then leads to a read."""
    attendee_copy = next(e["id"] for e in sandbox.state.events[ATTENDEE].values())
    app.put_message({"id": "attendee-1", "organizer": ATTENDEE, "eventId": attendee_copy, "recipients": 2})
    app.drain()
    status = app.status("attendee-1").body

    assert status["error"]["code"] == "notOrganizer"
    assert status["error"]["graph"]["status"] == 400
    assert status["error"]["graph"]["code"] == "ErrorInvalidRequest"
    assert status["error"]["graph"]["request-id"]
    assert uuid.UUID(status["error"]["graph"]["client-request-id"]).version == 4
    assert [c["operation"] for c in sandbox.calls()] == ["cancel", "get"]
    assert sandbox.state.outbox == []


def test_status_transitions_are_visible_while_pending(app: AppUnderTest, sandbox: GraphSandbox, meeting: str) -> None:
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError"))
    response = app.post({"organizer": ORGANIZER, "eventId": meeting})
    assert app.status(response.body["id"]).body["status"] == "queued"

    app.listener.drain_once()
    retrying = app.status(response.body["id"])
    assert retrying.status == 202
    assert retrying.body["status"] == "retrying"
    assert retrying.body["lastError"]["code"] == "graphUnavailable"

    app.drain()
    assert app.status(response.body["id"]).body["status"] == "cancelled"
