"""Every row of DESIGN section 4: the final status and the number of Graph calls it causes."""

from __future__ import annotations

import time

import pytest

from local_runner.graph_sandbox import Fault, GraphSandbox

from .conftest import ORGANIZER
from .support import AppUnderTest


@pytest.mark.parametrize(
    ("status", "graph_code", "our_code"),
    [
        (400, "ErrorInvalidIdMalformed", "invalidEventId"),
        (400, "ErrorCalendarIsNotOrganizer", "notOrganizer"),
        (403, "ErrorAccessDenied", "accessDenied"),
        (404, "ErrorInvalidUser", "organizerNotFound"),
        (404, "MailboxNotEnabledForRESTAPI", "mailboxNotEnabled"),
        (404, "ErrorItemNotFound", "eventNotFound"),
    ],
)
def test_permanent_answers_fail_after_one_call(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str, status: int, graph_code: str, our_code: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=status, code=graph_code))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "failed"
    assert result["error"]["code"] == our_code
    assert result["error"]["graph"]["code"] == graph_code
    assert result["error"]["graph"]["status"] == status
    assert len(sandbox.calls("cancel")) == 1
    assert sandbox.successful_cancels() == 0
    assert app.visible_messages() == 0
    assert app.poison_messages() == []


def test_unknown_user_and_mailbox_without_exchange_come_from_graph_itself(
    app: AppUnderTest, sandbox: GraphSandbox
) -> None:
    unknown = app.submit_and_process({"organizer": "ghost@contoso.com", "eventId": "AAMkAAA="})
    no_mailbox = app.submit_and_process({"organizer": "nomailbox@contoso.com", "eventId": "AAMkAAA="})
    missing_event = app.submit_and_process({"organizer": ORGANIZER, "eventId": "AAMkNotThere="})

    assert unknown["error"]["code"] == "organizerNotFound"
    assert no_mailbox["error"]["code"] == "mailboxNotEnabled"
    assert missing_event["error"]["code"] == "eventNotFound"
    # the read before the cancel (organizer, attendees, shape) meets Graph's refusal first
    assert len(sandbox.calls("get")) == 3
    assert sandbox.calls("cancel") == []


def test_a_401_refreshes_the_token_once_then_succeeds(app: AppUnderTest, sandbox: GraphSandbox, meeting: str) -> None:
    sandbox.add_fault(Fault(action="status", status=401, code="InvalidAuthenticationToken"))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "cancelled"
    assert len(sandbox.calls("cancel")) == 2
    assert sandbox.successful_cancels() == 1
    assert sandbox.state.token_requests == 2


def test_a_second_401_is_a_configuration_failure(app: AppUnderTest, sandbox: GraphSandbox, meeting: str) -> None:
    sandbox.add_fault(Fault(action="status", status=401, code="InvalidAuthenticationToken", times=2))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "failed"
    assert result["error"]["code"] == "unauthorized"
    assert "Calendars.ReadWrite" in result["error"]["message"]
    assert len(sandbox.calls("cancel")) == 2


def test_a_429_puts_the_request_back_with_the_retry_after_and_then_cancels(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=429, code="ApplicationThrottled", retry_after=1))
    response = app.post({"organizer": ORGANIZER, "eventId": meeting})
    started = time.monotonic()
    app.listener.drain_once()

    waiting = app.status(response.body["id"])
    assert waiting.body["status"] == "retrying"
    assert "nextAttemptAt" in waiting.body
    assert app.visible_messages() == 0

    app.drain(wait_for_delayed=8)
    assert time.monotonic() - started >= 1
    assert app.status(response.body["id"]).body["status"] == "cancelled"
    assert len(sandbox.calls("cancel")) == 2
    assert sandbox.successful_cancels() == 1
    assert app.poison_messages() == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_unknown_outcome_is_verified_before_calling_again(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str, status: int
) -> None:
    sandbox.add_fault(Fault(action="status", status=status, code="ServiceUnavailable"))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "cancelled"
    # read (organizer, attendees, shape), cancel, verify: still there, cancel again (no second read)
    assert [c["operation"] for c in sandbox.calls()] == ["get", "cancel", "get", "cancel"]
    assert sandbox.successful_cancels() == 1


def test_a_timeout_after_graph_applied_the_cancel_is_not_sent_twice(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="slow_after_apply", delay=3))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "cancelled"
    assert result["resolution"].startswith("verified")
    assert [c["operation"] for c in sandbox.calls()] == ["get", "cancel", "get"]
    assert sandbox.successful_cancels() == 1
    assert len(sandbox.state.outbox) == 2


def test_a_connection_reset_after_graph_applied_the_cancel_is_not_sent_twice(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="reset_after_apply"))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "cancelled"
    assert [c["operation"] for c in sandbox.calls()] == ["get", "cancel", "get"]
    assert sandbox.successful_cancels() == 1


def test_transient_failures_end_failed_and_in_poison_after_max_dequeue_count(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=100, operation="any"))
    result = app.submit_and_process({"organizer": ORGANIZER, "eventId": meeting})

    assert result["status"] == "failed"
    assert result["error"]["code"] == "graphUnavailable"
    assert "5 deliveries" in result["error"]["message"]
    # the read before the cancel failed on every delivery, so no cancel can have been sent
    assert "resolution" not in result
    assert sandbox.calls("cancel") == []
    assert len(app.poison_messages()) == 1
    assert sandbox.successful_cancels() == 0


def test_a_cancel_with_an_unknown_outcome_that_keeps_failing_may_have_been_sent(
    app: AppUnderTest, sandbox: GraphSandbox, meeting: str
) -> None:
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=1))
    sandbox.add_fault(Fault(action="status", status=500, code="InternalServerError", times=100, operation="get"))
    # the attendee count in the message: the cancel is the first call, and every verification fails
    app.put_message({"id": "keeps-failing", "organizer": ORGANIZER, "eventId": meeting, "recipients": 2})
    app.drain()
    result = app.status("keeps-failing").body

    assert result["error"]["code"] == "graphUnavailable"
    assert "may have been sent" in result["resolution"]
    assert len(sandbox.calls("cancel")) == 1
