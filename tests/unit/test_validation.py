"""Intake validation: each rule alone, several at once, and the HTTP-level refusals, as the HTTP
function's parser (``parsing``) and the adapter's problem rendering decide them; no storage."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, timedelta

import pytest

from cancel_function.responses import problem_response
from meeting_cancel.batch_models import WindowRequest
from meeting_cancel.models import MAX_COMMENT_LENGTH, CancelRequest, QueuedCancelRequest
from meeting_cancel.occurrences import SEARCH_MARGIN, search_window
from meeting_cancel.parsing import parse_model, parse_request
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


# ----- hostile and careless bodies (issue 15): a 400 that says what to fix, never a crash
@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 60000, "nests"),
        (b'{"organizer":' + b"1" * 60000 + b"}", "digits"),
        (b'{"organizer": -' + b"9" * 5000 + b"}", "digits"),
        (b'{"organizer": NaN, "eventId": "x"}', "NaN"),
        (b'{"organizer": Infinity}', "Infinity"),
        (b'{"organizer": "a@contoso.com", "organizer": "b@contoso.com", "eventId": "x"}', "twice"),
        (b'{"comment": ' + b"[" * 40 + b"]" * 40 + b"}", "nests"),
    ],
)
def test_documents_json_cannot_read_safely_are_a_400_naming_why(raw: bytes, fragment: str) -> None:
    problem = refusal(raw=raw)
    assert (problem.status, problem.code) == (400, "malformedJson")
    assert fragment in problem.detail


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    request = post({"organizer": ORGANIZER, "eventId": VALID_ID, "comment": "[" * 500 + '\\"{' * 100})
    assert request.comment is not None
    assert request.comment.startswith("[[[")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"organizer", "eventId"}),
        ({"organizer": "adele"}, {"organizer", "eventId"}),
        ({"organizr": ORGANIZER}, {"organizr", "organizer", "eventId"}),
        ({"organizer": ORGANIZER, "evntId": VALID_ID, "comment": ""}, {"evntId", "eventId", "comment"}),
        (
            {"organizer": "x", "eventId": VALID_ID, "iCalUId": "u@x", "occurrenceDate": "2026-12-08"},
            {"organizer", "iCalUId", "timeZone"},
        ),
        ({"organizer": ORGANIZER, "eventId": VALID_ID, "timeZone": "UTC", "comment": 5}, {"occurrenceDate", "comment"}),
    ],
)
def test_every_bad_field_is_listed_at_once_whatever_the_mix(body: object, fields: set[str]) -> None:
    problem = refusal(body)
    assert {e["field"] for e in problem.errors} == fields
    assert all(field in problem.detail for field in fields)


@pytest.mark.parametrize(
    ("day", "zone"),
    [("9999-12-31", "UTC"), ("0001-01-01", "Asia/Tokyo"), ("0001-01-01", "Pacific/Kiritimati"), ("3000-01-01", "UTC")],
)
def test_occurrence_days_outside_what_a_calendar_holds_are_400(day: str, zone: str) -> None:
    errors = errors_of({"organizer": ORGANIZER, "eventId": VALID_ID, "occurrenceDate": day, "timeZone": zone})
    assert errors == {"occurrenceDate": "must be a day between 1900-01-01 and 2999-12-31"}


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12", "UTC"])
@pytest.mark.parametrize("day", ["1900-01-01", "2999-12-31"])
def test_the_first_and_last_days_have_a_window_in_every_zone(day: str, zone: str) -> None:
    """The worker's widened search window (occurrences.search_window) exists for every accepted day."""
    request = post({"organizer": ORGANIZER, "eventId": VALID_ID, "occurrenceDate": day, "timeZone": zone})
    assert request.occurrenceDate is not None
    start, end = search_window(request.occurrenceDate, request.zone)
    assert end - start == timedelta(days=1) + 2 * SEARCH_MARGIN
    assert start.astimezone(UTC) < end.astimezone(UTC)


@pytest.mark.parametrize(
    "day",
    [
        "x026-12-01",
        "2026-13-01",
        "2026-02-30",
        "2026-12-01T00:00:01",
        "2026-12-01T00:00:00",
        "20261201",
        20261201,
        "",
        None,
    ],
)
def test_a_day_that_is_not_yyyy_mm_dd_says_the_format_not_the_parsers_words(day: object) -> None:
    body = {"organizer": ORGANIZER, "eventId": VALID_ID, "occurrenceDate": day, "timeZone": "UTC"}
    errors = errors_of(body)
    if day is None:  # null is "not sent": the time zone then lacks its day
        assert errors == {"occurrenceDate": "required with timeZone: the day (YYYY-MM-DD) of the occurrence to cancel"}
        return
    assert list(errors) == ["occurrenceDate"]
    assert errors["occurrenceDate"].startswith("must be a day as YYYY-MM-DD")
    assert "character" not in errors["occurrenceDate"]
    assert "zero time" not in errors["occurrenceDate"]


def test_a_missing_time_zone_is_named_once_without_a_doubled_phrase() -> None:
    errors = errors_of({"organizer": ORGANIZER, "eventId": VALID_ID, "occurrenceDate": "2026-12-08"})
    assert errors["timeZone"].count("with occurrenceDate") == 1
    assert errors["timeZone"].startswith("required with occurrenceDate: ")


def test_event_id_and_ical_uid_together_say_send_one_of() -> None:
    errors = errors_of({"organizer": ORGANIZER, "eventId": VALID_ID, "iCalUId": "u@x"})
    assert errors == {"iCalUId": "send one of eventId or iCalUId, not both"}


@pytest.mark.parametrize("name", ["x\nERROR forged line", "tab\there", "bell\x07", "z" * 5000])
def test_field_names_from_the_body_are_escaped_and_cut_short(name: str) -> None:
    problem = refusal({"organizer": ORGANIZER, "eventId": VALID_ID, name: 1})
    [error] = problem.errors
    assert error["field"].isprintable()
    assert len(error["field"]) <= 65
    assert "\n" not in problem.detail
    assert "\t" not in problem.detail
    assert error["message"].startswith("unknown field")


# ----- the offboarding body is read the way the cancellation body is
def window_refusal(body: object) -> dict[str, str]:
    with pytest.raises(Problem) as refused:
        parse_model(json.dumps(body).encode(), WindowRequest, content_type="application/json")
    assert (refused.value.status, refused.value.code) == (400, "invalidRequest")
    return {e["field"]: e["message"] for e in refused.value.errors}


def test_window_field_names_are_read_case_insensitively() -> None:
    window = parse_model(
        b'{"From": "2026-12-01T00:00:00Z", "TO": "2026-12-31T00:00:00+01:00", "Preview": true, "SubjectContains": "x"}',
        WindowRequest,
        content_type="application/json",
    )
    assert (window.start.day, window.end.day, window.preview, window.subjectContains) == (1, 31, True, "x")


def test_start_and_end_are_not_silently_taken_for_from_and_to() -> None:
    errors = window_refusal({"start": "2026-12-01T00:00:00Z", "end": "2026-12-31T00:00:00Z"})
    assert set(errors) == {"from", "to", "start", "end"}
    assert "did you mean 'from'" in errors["start"]
    assert "did you mean 'to'" in errors["end"]
    assert errors["from"].startswith("required: the start of the window")


def test_every_bad_window_field_is_listed_at_once() -> None:
    errors = window_refusal({"from": "2026-12-01", "comment": "", "preview": "maybe", "subjectContans": "x"})
    assert set(errors) == {"from", "to", "comment", "preview", "subjectContans"}
    assert "did you mean 'subjectContains'" in errors["subjectContans"]
    assert errors["preview"] == "must be true or false"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00Z"),
        ("9999-12-30T00:00:00Z", "9999-12-31T23:00:00-05:00"),
        ("0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00"),
        ("1899-12-31T23:59:59-12:00", "1900-01-02T00:00:00Z"),
    ],
)
def test_windows_at_the_datetime_extremes_are_400_naming_the_range(start: str, end: str) -> None:
    errors = window_refusal({"from": start, "to": end})
    assert errors
    assert all(message == "must be between 1900-01-01 and 2999-12-31" for message in errors.values())


@pytest.mark.parametrize("moment", ["2026-12-01", "yesterday", "2026-12-01T25:00:00Z", 1764547200, "", None, []])
def test_a_moment_that_is_not_iso_8601_says_the_format(moment: object) -> None:
    errors = window_refusal({"from": moment, "to": "2026-12-31T00:00:00Z"})
    assert list(errors) == ["from"]
    assert errors["from"].startswith(("must be a date and time with a UTC offset", "needs a UTC offset"))


def test_the_widest_window_at_the_edges_of_the_range_is_accepted() -> None:
    window = parse_model(
        b'{"from": "1900-01-01T00:00:00+14:00", "to": "1901-01-01T00:00:00Z"}', WindowRequest, content_type=None
    )
    assert window.start.astimezone(UTC).year == 1899


def test_a_body_of_thousands_of_bad_fields_gets_a_short_answer() -> None:
    problem = refusal({"organizer": ORGANIZER, "eventId": VALID_ID, **{f"field{n}": 1 for n in range(3000)}})
    assert len(problem.errors) == 21
    assert problem.errors[-1] == {"field": "(more)", "message": "2980 more problems not listed"}
    assert len(problem.to_json()) < 8000
