"""Intake validation: each rule alone, several at once, and the HTTP-level refusals, as the HTTP
function's parser (``parsing``) and the adapter's problem rendering decide them; no storage."""

from __future__ import annotations

import json
import uuid

import pytest

from cancel_function.responses import problem_response
from meeting_cancel.models import MAX_COMMENT_LENGTH, CancelRequest, QueuedCancelRequest
from meeting_cancel.parsing import parse_request
from meeting_cancel.policy import OrganizerPolicy
from meeting_cancel.problems import Problem
from meeting_cancel.work_queue import encode

ORGANIZER = "adele.vance@contoso.com"
VALID_ID = "AAMkAGI2TG93AAA="


def post(body: object = None, *, raw: bytes | None = None, content_type: str = "application/json") -> CancelRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return parse_request(data, content_type=content_type)


def refusal(body: object = None, **kwargs: object) -> Problem:
    with pytest.raises(Problem) as refused:
        post(body, **kwargs)  # type: ignore[arg-type]
    return refused.value


def errors_of(body: object) -> dict[str, str]:
    problem = refusal(body)
    response = problem_response(problem)
    assert response.status_code == 400, problem.body()
    assert response.mimetype == "application/problem+json"
    assert problem.code == "invalidRequest"
    return {e["field"]: e["message"] for e in problem.errors}


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"eventId": VALID_ID}, "organizer", "required"),
        ({"organizer": ORGANIZER}, "eventId", "required"),
        ({"organizer": "not-an-address", "eventId": VALID_ID}, "organizer", "userPrincipalName"),
        ({"organizer": "jane doe@contoso.com", "eventId": VALID_ID}, "organizer", "whitespace"),
        ({"organizer": "jane/../x@contoso.com", "eventId": VALID_ID}, "organizer", "userPrincipalName"),
        ({"organizer": "jane#x@contoso.com", "eventId": VALID_ID}, "organizer", "'#'"),
        ({"organizer": 42, "eventId": VALID_ID}, "organizer", "string"),
        ({"organizer": ORGANIZER, "eventId": "AAMk/AGI2+TG93"}, "eventId", "translateExchangeIds"),
        ({"organizer": ORGANIZER, "eventId": "AAMk?x"}, "eventId", "REST id"),
        ({"organizer": ORGANIZER, "eventId": "AAMk\n"}, "eventId", "REST id"),
        ({"organizer": ORGANIZER + "\n", "eventId": VALID_ID}, "organizer", "whitespace"),
        ({"organizer": ORGANIZER, "eventId": "AAMk%2F"}, "eventId", "REST id"),
        ({"organizer": ORGANIZER, "eventId": ""}, "eventId", "empty"),
        ({"organizer": ORGANIZER, "eventId": "A" * 1025}, "eventId", "too long"),
        ({"organizer": ORGANIZER, "eventId": VALID_ID, "comment": ""}, "comment", "default notice"),
        ({"organizer": ORGANIZER, "eventId": VALID_ID, "comment": "   "}, "comment", "default notice"),
        (
            {"organizer": ORGANIZER, "eventId": VALID_ID, "comment": "x" * (MAX_COMMENT_LENGTH + 1)},
            "comment",
            "too long",
        ),
        ({"organizer": ORGANIZER, "eventId": VALID_ID, "comment": 7}, "comment", "string"),
        ({"organizer": ORGANIZER, "eventId": VALID_ID, "evntId": "x"}, "evntId", "did you mean 'eventId'"),
        ({"organizer": ORGANIZER, "eventId": VALID_ID, "reason": "x"}, "reason", "the fields are"),
    ],
)
def test_each_rule_refuses_one_bad_field(body: object, field: str, fragment: str) -> None:
    errors = errors_of(body)
    assert list(errors) == [field]
    assert fragment in errors[field]


def test_every_bad_field_is_listed_at_once() -> None:
    problem = refusal({"organizer": "nobody", "eventId": "a/b", "comment": "", "extra": 1})
    fields = {e["field"] for e in problem.errors}
    assert fields == {"organizer", "eventId", "comment", "extra"}
    for field in fields:
        assert field in problem.detail


def test_object_id_organizer_is_accepted_in_lowercase() -> None:
    request = post({"organizer": "A1B2C3D4-0000-4000-8000-00000000ABCD", "eventId": VALID_ID})
    assert OrganizerPolicy.parse("*").allows(request.organizer)
    assert request.organizer == "a1b2c3d4-0000-4000-8000-00000000abcd"


def test_capitalised_field_names_are_read_as_graph_reads_them() -> None:
    request = post({"Organizer": ORGANIZER, "EventId": VALID_ID, "Comment": "Graph's own sample"})
    assert request.eventId == VALID_ID


def test_the_same_field_twice_in_different_case_is_refused() -> None:
    errors = errors_of({"organizer": ORGANIZER, "eventId": VALID_ID, "comment": "a", "Comment": "b"})
    assert "given twice" in next(iter(errors.values()))


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b""])
def test_malformed_json_is_400(raw: bytes) -> None:
    problem = refusal(raw=raw)
    assert problem.status == 400
    assert problem.code == "malformedJson"


@pytest.mark.parametrize("body", [[1, 2], "text", None])
def test_a_body_that_is_not_an_object_is_400(body: object) -> None:
    problem = refusal(raw=json.dumps(body).encode())
    assert problem.status == 400
    assert "JSON object" in problem.detail


def test_non_json_content_type_is_415() -> None:
    problem = refusal({"organizer": ORGANIZER, "eventId": VALID_ID}, content_type="application/x-www-form-urlencoded")
    assert problem.status == 415
    assert "application/json" in problem.detail


def test_body_over_64_kb_is_413() -> None:
    problem = refusal(raw=b'{"comment": "' + b"x" * 70000 + b'"}')
    assert problem.status == 413


def test_organizer_outside_the_allowed_organizers_is_403() -> None:
    request = post({"organizer": "jane@fabrikam.com", "eventId": VALID_ID})
    with pytest.raises(Problem) as refused:
        OrganizerPolicy.parse("@contoso.com").require(request.organizer)
    assert refused.value.status == 403
    assert refused.value.code == "organizerNotAllowed"
    assert "ALLOWED_ORGANIZERS" in refused.value.detail


def test_queue_message_stays_under_the_queue_limit_with_the_longest_comment() -> None:
    worst = "\u0001" * MAX_COMMENT_LENGTH
    request = post({"organizer": ORGANIZER, "eventId": "A" * 1024, "comment": worst})
    message = encode(QueuedCancelRequest(id=str(uuid.uuid4()), **request.model_dump()))
    assert len(message.encode("utf-8")) < 64 * 1024
