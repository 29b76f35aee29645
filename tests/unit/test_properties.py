"""Property tests: for any input, either a clear 4xx or a Graph URL with exactly the expected path."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import requests
from hypothesis import example, given, settings
from hypothesis import strategies as st

from meeting_cancel.graph import graph_path
from meeting_cancel.models import TRACKING_ID, CancelRequest
from meeting_cancel.parsing import parse_request
from meeting_cancel.problems import Problem

BASE = "https://graph.microsoft.com/v1.0"
tricky = st.sampled_from(["/", "..", "?", "#", "%", "%2F", " ", "\t", "\n", "\x00", "+", "=", "@", "'", "\\", "&"])
fragments = st.lists(st.one_of(tricky, st.text(max_size=8)), max_size=6).map("".join)
upn_like = st.builds(lambda a, b: f"{a}@{b}", fragments, fragments)


def cancel_url(organizer: str, event_id: str) -> str:
    url = f"{BASE}/{graph_path('users', organizer, 'events', event_id, 'cancel')}"
    return requests.Request("POST", url).prepare().url or ""


@settings(max_examples=400, deadline=None)
@given(organizer=st.one_of(upn_like, fragments), event_id=fragments, comment=st.none() | st.text(max_size=20))
@example(organizer="a+b@contoso.com", event_id="AAMk==", comment=None)
@example(organizer="x@contoso.com/../admin", event_id="id?x=1", comment="")
@example(organizer="x@contoso.com\n", event_id="AAMk\n", comment=None)
def test_valid_requests_build_urls_with_exactly_the_expected_segments(
    organizer: str, event_id: str, comment: str | None
) -> None:
    body = json.dumps({"organizer": organizer, "eventId": event_id, "comment": comment}).encode()
    try:
        request = parse_request(body, content_type="application/json")
    except Problem as problem:
        assert 400 <= problem.status < 500
        assert problem.detail
        return
    assert request.eventId is not None
    parts = urlsplit(cancel_url(request.organizer, request.eventId))
    assert (parts.query, parts.fragment) == ("", "")
    segments = parts.path.split("/")
    assert segments[:3] == ["", "v1.0", "users"]
    assert len(segments) == 7
    assert segments[4] == "events"
    assert segments[6] == "cancel"
    assert unquote(segments[3]) == request.organizer
    assert unquote(segments[5]) == request.eventId
    for value in (request.organizer, request.eventId):
        assert not any(ch.isspace() or ord(ch) < 32 or ch in "/?#%\\" for ch in value)
        assert ".." not in value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_body_is_accepted_or_refused_with_a_4xx(body: bytes) -> None:
    try:
        parse_request(body, content_type="application/json")
    except Problem as problem:
        assert 400 <= problem.status < 500


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=12), st.integers(), st.none()), max_size=5))
def test_any_object_is_validated_or_refused_field_by_field(document: dict[str, object]) -> None:
    try:
        CancelRequest.model_validate(document)
    except ValueError as error:
        assert str(error)


@given(fragments)
@example("ok-id")
@example("bad'id")
def test_tracking_ids_never_hold_characters_forbidden_in_table_keys(candidate: str) -> None:
    if TRACKING_ID.fullmatch(candidate):
        assert not set(candidate) & set("'/\\#?%\x00\n\t ")
        assert 1 <= len(candidate) <= 128
