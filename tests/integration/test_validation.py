"""Intake validation: each rule alone, several at once, and the HTTP-level refusals."""

from __future__ import annotations

import json
import os

import pytest

from meeting_cancel import service
from meeting_cancel.models import MAX_COMMENT_LENGTH

from .conftest import ORGANIZER
from .support import AppUnderTest

VALID_ID = "AAMkAGI2TG93AAA="


def errors_of(app: AppUnderTest, body: object, **kwargs: object) -> dict[str, str]:
    response = app.post(body, **kwargs)
    assert response.status == 400, response.body
    assert response.mimetype == "application/problem+json"
    assert response.body["code"] == "invalidRequest"
    return {e["field"]: e["message"] for e in response.body["errors"]}


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
def test_each_rule_refuses_one_bad_field(app: AppUnderTest, body: object, field: str, fragment: str) -> None:
    errors = errors_of(app, body)
    assert list(errors) == [field]
    assert fragment in errors[field]


def test_every_bad_field_is_listed_at_once(app: AppUnderTest) -> None:
    response = app.post({"organizer": "nobody", "eventId": "a/b", "comment": "", "extra": 1})
    fields = {e["field"] for e in response.body["errors"]}
    assert fields == {"organizer", "eventId", "comment", "extra"}
    for field in fields:
        assert field in response.body["detail"]


def test_object_id_organizer_is_accepted_in_lowercase(app: AppUnderTest) -> None:
    os.environ["ALLOWED_ORGANIZERS"] = "*"
    service.reset()
    response = app.post({"organizer": "A1B2C3D4-0000-4000-8000-00000000ABCD", "eventId": VALID_ID})
    assert response.status == 202
    assert response.body["organizer"] == "a1b2c3d4-0000-4000-8000-00000000abcd"


def test_capitalised_field_names_are_read_as_graph_reads_them(app: AppUnderTest) -> None:
    response = app.post({"Organizer": ORGANIZER, "EventId": VALID_ID, "Comment": "Graph's own sample"})
    assert response.status == 202, response.body
    assert response.body["eventId"] == VALID_ID


def test_the_same_field_twice_in_different_case_is_refused(app: AppUnderTest) -> None:
    errors = errors_of(app, {"organizer": ORGANIZER, "eventId": VALID_ID, "comment": "a", "Comment": "b"})
    assert "given twice" in next(iter(errors.values()))


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b""])
def test_malformed_json_is_400(app: AppUnderTest, raw: bytes) -> None:
    response = app.post(None, raw=raw)
    assert response.status == 400
    assert response.body["code"] == "malformedJson"


@pytest.mark.parametrize("body", [[1, 2], "text", None])
def test_a_body_that_is_not_an_object_is_400(app: AppUnderTest, body: object) -> None:
    response = app.post(None, raw=json.dumps(body).encode())
    assert response.status == 400
    assert "JSON object" in response.body["detail"]


def test_non_json_content_type_is_415(app: AppUnderTest) -> None:
    response = app.post(
        {"organizer": ORGANIZER, "eventId": VALID_ID}, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status == 415
    assert "application/json" in response.body["detail"]


def test_body_over_64_kb_is_413(app: AppUnderTest) -> None:
    response = app.post(None, raw=b'{"comment": "' + b"x" * 70000 + b'"}')
    assert response.status == 413


def test_organizer_outside_the_allowed_organizers_is_403(app: AppUnderTest) -> None:
    response = app.post({"organizer": "jane@fabrikam.com", "eventId": VALID_ID})
    assert response.status == 403
    assert response.body["code"] == "organizerNotAllowed"
    assert "ALLOWED_ORGANIZERS" in response.body["detail"]


def test_queue_message_stays_under_the_queue_limit_with_the_longest_comment(app: AppUnderTest) -> None:
    worst = "\u0001" * MAX_COMMENT_LENGTH
    response = app.post({"organizer": ORGANIZER, "eventId": "A" * 1024, "comment": worst})
    assert response.status == 202
    [message] = app.queue.peek_messages()
    assert len(message.content.encode("utf-8")) < 64 * 1024
