"""Graph's answers classified as DESIGN section 4 tabulates them, on status and ``error.code``
only (never the message), from responses built in memory."""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime

import pytest
import requests

from meeting_cancel.errors import GraphPermanentError, GraphThrottled, GraphTransientError
from meeting_cancel.graph import classify, graph_answer, graph_path, retry_after_seconds
from meeting_cancel.records import utcnow


def answer(status: int, code: str | None = None, *, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    body = {"error": {"code": code, "message": "whatever Graph says", "innerError": {"request-id": "rid", "date": "d"}}}
    response._content = json.dumps(body).encode() if code else b""
    response.headers.update(headers or {})
    return response


@pytest.mark.parametrize(
    ("status", "graph_code", "our_code"),
    [
        (400, "ErrorInvalidIdMalformed", "invalidEventId"),
        (400, "ErrorCalendarIsNotOrganizer", "notOrganizer"),
        (400, "ErrorInvalidRequest", "invalidRequest"),
        (403, "ErrorAccessDenied", "accessDenied"),
        (404, "ErrorItemNotFound", "eventNotFound"),
        (404, "ErrorInvalidUser", "organizerNotFound"),
        (404, "MailboxNotEnabledForRESTAPI", "mailboxNotEnabled"),
        (404, "SomethingElse", "notFound"),
        (409, "Conflict", "graphRejected"),
        (401, "InvalidAuthenticationToken", "unauthorized"),
    ],
)
def test_permanent_answers(status: int, graph_code: str, our_code: str) -> None:
    error = classify(answer(status, graph_code))
    assert isinstance(error, GraphPermanentError)
    assert error.code == our_code
    assert (error.answer.status, error.answer.code, error.answer.request_id) == (status, graph_code, "rid")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 507])
def test_server_errors_leave_the_outcome_unknown(status: int) -> None:
    error = classify(answer(status, "ServiceUnavailable"))
    assert type(error) is GraphTransientError
    assert error.outcome_unknown
    assert error.code == "graphUnavailable"


def test_429_is_throttling_that_did_not_apply() -> None:
    error = classify(answer(429, "ApplicationThrottled", headers={"Retry-After": "7"}))
    assert isinstance(error, GraphThrottled)
    assert (error.retry_after, error.outcome_unknown) == (7.0, False)


def test_503_with_retry_after_is_throttling_whose_outcome_is_unknown() -> None:
    error = classify(answer(503, "ServiceUnavailable", headers={"Retry-After": "2"}))
    assert isinstance(error, GraphThrottled)
    assert (error.retry_after, error.outcome_unknown) == (2.0, True)


def test_retry_after_is_read_in_both_of_its_forms() -> None:
    assert retry_after_seconds(answer(429, headers={"Retry-After": "12"})) == 12.0
    later = format_datetime(utcnow() + timedelta(seconds=60), usegmt=True)
    assert 55 <= (retry_after_seconds(answer(429, headers={"Retry-After": later})) or 0) <= 60
    assert retry_after_seconds(answer(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_seconds(answer(429)) is None


def test_an_answer_without_a_json_body_is_still_classified_by_status() -> None:
    assert graph_answer(answer(502)).code is None
    assert classify(answer(404)).code == "notFound"


def test_each_path_segment_is_encoded_exactly_once() -> None:
    assert graph_path("users", "a+b@contoso.com", "events", "AAMk=/x") == "users/a%2Bb%40contoso.com/events/AAMk%3D%2Fx"


@pytest.mark.parametrize(
    ("status", "code", "message", "ours", "advice"),
    [
        (
            403,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
            "permissionMissing",
            "Calendars.ReadWrite",
        ),
        (403, "ErrorAccessDenied", "Access to OData is disabled.", "mailboxOutsideAccessPolicy", "RBAC"),
        (
            403,
            "ErrorAccessDenied",
            "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            "mailboxOutsideAccessPolicy",
            "scope",
        ),
        (
            403,
            "ExtensionError",
            "Operation: Create; Exception: [Status Code: Forbidden; Reason: Access to OData is disabled.]",
            "mailboxOutsideAccessPolicy",
            "scope",
        ),
        (
            400,
            "ExtensionError",
            "Operation: Read; Exception: [Status Code: BadRequest]",
            "exchangeError",
            "on-premises",
        ),
        (
            404,
            "MailboxNotEnabledForRESTAPI",
            "REST API is not yet supported for this mailbox.",
            "mailboxNotEnabled",
            "licence",
        ),
        (403, "ErrorAccessDenied", "Something new.", "accessDenied", None),
    ],
)
def test_403s_and_unusable_mailboxes_say_what_to_do(
    status: int, code: str, message: str, ours: str, advice: str | None
) -> None:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"error": {"code": code, "message": message}}).encode()
    error = classify(response)

    assert isinstance(error, GraphPermanentError)
    assert error.code == ours
    assert message in error.reason
    if advice:
        assert advice in error.reason
