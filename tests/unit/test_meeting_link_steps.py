"""One cancellation per meeting, as pure decisions: what a request does about the request that
holds its meeting (``steps.after_owner``), the moves that link, follow and take over, and the
meeting's key. No storage: the row itself is tested on Azurite (tests/integration/test_one_per_meeting.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from meeting_cancel import lifecycle, steps
from meeting_cancel.config import Settings
from meeting_cancel.failures import Failure
from meeting_cancel.meeting_links import meeting_key
from meeting_cancel.models import QueuedCancelRequest
from meeting_cancel.records import Status, StatusRecord

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ORGANIZER = "adele.vance@contoso.com"
EVENT = "AAMkAGI2TG93AAA="
SETTINGS = Settings.from_environ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "ALLOWED_ORGANIZERS": "*"})
REQUEST = QueuedCancelRequest(id="second", organizer=ORGANIZER, eventId=EVENT)


def request_record(request_id: str, **changes: Any) -> StatusRecord:
    fresh = lifecycle.accept(request_id, REQUEST, source="http", now=NOW - timedelta(minutes=1))
    return replace(fresh, **changes)


def owner(**changes: Any) -> StatusRecord:
    return request_record("first", **changes)


def test_a_pending_owner_is_waited_for_and_a_throttled_one_until_its_retry() -> None:
    busy = owner(status=Status.PROCESSING, updated_at=NOW)
    assert steps.after_owner("first", busy, NOW) == steps.Wait("first", steps.FOLLOW_POLL_SECONDS)
    retrying = owner(status=Status.RETRYING, updated_at=NOW, next_attempt_at=NOW + timedelta(seconds=20))
    assert steps.after_owner("first", retrying, NOW) == steps.Wait("first", 21.0)
    stalled = owner(updated_at=NOW - timedelta(seconds=50))  # queued, nobody has moved it for 50 s
    assert steps.after_owner("first", stalled, NOW) == steps.Wait("first", 25.0)
    far = owner(status=Status.RETRYING, next_attempt_at=NOW + timedelta(hours=1))
    wait = steps.after_owner("first", far, NOW)
    assert isinstance(wait, steps.Wait)
    assert wait.delay == steps.FOLLOW_MAX_WAIT_SECONDS


@pytest.mark.parametrize("code", sorted(steps.SETTLED_FAILURES))
def test_an_owner_that_cancelled_or_found_the_meeting_uncancellable_is_shared(code: str) -> None:
    cancelled = owner(status=Status.CANCELLED, resolution=steps.CANCELLED_BY_GRAPH)
    assert steps.after_owner("first", cancelled, NOW) == steps.Share(cancelled)
    failed = owner(status=Status.FAILED, error_code=code)
    assert steps.after_owner("first", failed, NOW) == steps.Share(failed)


@pytest.mark.parametrize(
    ("changes", "doubt"),
    [
        ({"error_code": "throttled"}, False),
        ({"error_code": "accessDenied"}, False),
        ({"error_code": "organizerNotAllowed"}, False),
        ({"error_code": "graphUnavailable", "resolution": steps.MAYBE_SENT, "attempts": 5}, True),
    ],
    ids=["throttled", "access denied", "organizer not allowed", "gave up not knowing"],
)
def test_an_owner_that_failed_for_a_reason_that_may_pass_is_taken_over(changes: dict[str, Any], doubt: bool) -> None:
    decision = steps.after_owner("first", owner(status=Status.FAILED, **changes), NOW)
    assert decision == steps.TakeOver(doubt=doubt)


def test_an_owner_whose_record_is_gone_is_taken_over_after_reading_the_event() -> None:
    assert steps.after_owner("first", None, NOW) == steps.TakeOver(doubt=True)
    long_ago = NOW - timedelta(seconds=steps.OWNER_RECORD_GRACE_SECONDS + 1)
    assert steps.after_owner("first", None, NOW, held_since=long_ago) == steps.TakeOver(doubt=True)


def test_a_row_just_written_by_a_request_still_storing_its_record_is_waited_for() -> None:
    """A fresh queue request holds the row one storage call before its record exists: taking the
    meeting over then would let both cancel."""
    just_now = NOW - timedelta(seconds=1)
    assert steps.after_owner("first", None, NOW, held_since=just_now) == steps.Wait("first", steps.FOLLOW_POLL_SECONDS)
    edge = NOW - timedelta(seconds=steps.OWNER_RECORD_GRACE_SECONDS - 1)
    assert isinstance(steps.after_owner("first", None, NOW, held_since=edge), steps.Wait)


def test_the_grace_outlasts_the_holders_own_limit_with_room_for_clock_skew() -> None:
    assert steps.OWNER_RECORD_GRACE_SECONDS >= 3 * steps.HOLD_TO_CLAIM_MAX_SECONDS


def test_a_linked_request_follows_before_anything_else_it_would_do() -> None:
    linked = lifecycle.link(request_record("second"), "first", now=NOW)
    assert (linked.status, linked.follows) == (Status.QUEUED, "first")
    assert steps.next_step(linked, REQUEST, NOW, SETTINGS) == steps.Follow("first")
    done = replace(linked, status=Status.CANCELLED)
    assert isinstance(steps.next_step(done, REQUEST, NOW, SETTINGS), steps.Duplicate)


def test_following_ends_with_the_owners_outcome_and_names_it() -> None:
    second = lifecycle.link(request_record("second"), "first", now=NOW)
    cancelled = lifecycle.follow(second, owner(status=Status.CANCELLED, resolution=steps.CANCELLED_BY_GRAPH), now=NOW)
    assert (cancelled.status, cancelled.follows, cancelled.attempts) == (Status.CANCELLED, "first", 0)
    assert "request first" in str(cancelled.resolution)

    refused = lifecycle.fail(
        owner(), now=NOW, failure=Failure("eventNotFound", "The specified object was not found in the store.")
    )
    failed = lifecycle.follow(second, refused, now=NOW)
    assert (failed.status, failed.follows, failed.error_code) == (Status.FAILED, "first", "eventNotFound")
    assert failed.error_message == refused.error_message


def test_taking_over_stops_following_and_carries_the_owners_doubt() -> None:
    second = lifecycle.link(request_record("second"), "first", now=NOW)
    taken = lifecycle.take_over(second, now=NOW, outcome_unknown=True)
    assert (taken.status, taken.follows, taken.outcome_unknown) == (Status.RETRYING, None, True)
    assert isinstance(steps.next_step(taken, REQUEST, NOW, SETTINGS), steps.Verify)
    clean = lifecycle.take_over(second, now=NOW, outcome_unknown=False)
    assert isinstance(steps.next_step(clean, REQUEST, NOW, SETTINGS), steps.Cancel)


def test_a_meeting_is_keyed_by_the_lower_cased_organizer_and_the_event_id() -> None:
    assert meeting_key(ORGANIZER, EVENT) == meeting_key(" Adele.Vance@CONTOSO.com", EVENT)
    assert meeting_key(ORGANIZER, EVENT) != meeting_key(ORGANIZER, EVENT.lower())  # Graph ids are case-sensitive
    assert meeting_key(ORGANIZER, EVENT) != meeting_key("megan.bowen@contoso.com", EVENT)
    assert "contoso" not in meeting_key(ORGANIZER, EVENT)
