"""The lifecycle as a table: every move against the transition map, and for each situation the
step ``steps.next_step`` chooses and what ``error_steps.after_error`` makes of each error. Pure: no
storage, no Graph, the clock passed in."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meeting_cancel import error_steps, idempotency, lifecycle, steps
from meeting_cancel.config import Settings
from meeting_cancel.errors import (
    GraphAnswer,
    GraphPermanentError,
    GraphThrottled,
    GraphTransientError,
    IdentityUnavailable,
    IllegalMove,
)
from meeting_cancel.failures import Failure
from meeting_cancel.lifecycle import MOVES, Move
from meeting_cancel.models import CancelRequest, QueuedCancelRequest
from meeting_cancel.records import Status, StatusRecord
from meeting_cancel.retry_policy import RetryPolicy

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ORGANIZER = "adele.vance@contoso.com"
EVENT = "AAMkAGI2TG93AAA="
SETTINGS = Settings.from_environ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "ALLOWED_ORGANIZERS": "*"})
POLICY = RetryPolicy(max_deliveries=5, host_retry_seconds=0.0, throttle_max_wait_seconds=600.0)
REQUEST = QueuedCancelRequest(id="r-1", organizer=ORGANIZER, eventId=EVENT)
ANSWER = GraphAnswer(status=503, code="ServiceUnavailable", request_id="rid", date="d")


def record(**changes: Any) -> StatusRecord:
    fresh = lifecycle.accept("r-1", REQUEST, source="queue", now=NOW - timedelta(minutes=1))
    return replace(fresh, **changes)


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


# ----- the map
@pytest.mark.parametrize("move", list(Move))
@pytest.mark.parametrize("status", list(Status))
def test_each_move_leaves_exactly_the_statuses_the_map_allows(move: Move, status: Status) -> None:
    moves = {
        Move.CONFIRM_QUEUED: lambda r: lifecycle.confirm_queued(r, now=NOW),
        Move.RESOLVE: lambda r: lifecycle.resolve(r, EVENT, now=NOW),
        Move.LINK: lambda r: lifecycle.link(r, "r-0", now=NOW),
        Move.FOLLOW: lambda r: lifecycle.follow(r, record(id="r-0", status=Status.CANCELLED), now=NOW),
        Move.TAKE_OVER: lambda r: lifecycle.take_over(r, now=NOW, outcome_unknown=True),
        Move.CLAIM: lambda r: lifecycle.claim(r, now=NOW, lease_seconds=40),
        Move.RELEASE: lambda r: lifecycle.release(r, now=NOW, due=later(5)),
        Move.CONFIRM_PRESENT: lambda r: lifecycle.confirm_present(r, now=NOW),
        Move.BACK_OFF: lambda r: lifecycle.back_off(
            r, now=NOW, due=later(5), failure=Failure("throttled", "x"), outcome_unknown=False
        ),
        Move.RETRY_LATER: lambda r: lifecycle.retry_later(
            r, now=NOW, retry_in=0, failure=Failure("graphUnavailable", "x"), outcome_unknown=True
        ),
        Move.COMPLETE: lambda r: lifecycle.complete(r, now=NOW, resolution="cancelled by Graph"),
        Move.FAIL: lambda r: lifecycle.fail(r, now=NOW, failure=Failure("notOrganizer", "x")),
        Move.ABORT: lambda r: lifecycle.abort(r, now=NOW, by="functionKey"),
        Move.RETRY: lambda r: lifecycle.retry(r, now=NOW, by="functionKey"),
    }
    if move not in moves:  # ADMIT, ACCEPT and REJECT create records: they leave no status
        assert MOVES[move][0] == frozenset({None})
        return
    origins, target = MOVES[move]
    before = record(status=status)
    if status in origins:
        after = moves[move](before)
        assert after.status == (target or status)
        assert after.updated_at == NOW
    else:
        with pytest.raises(IllegalMove):
            moves[move](before)


def test_final_statuses_are_left_only_by_an_operator_retry_of_a_failure() -> None:
    for move, (origins, _) in MOVES.items():
        final = origins & {Status.CANCELLED, Status.FAILED, Status.ABORTED}
        assert not final or (move == Move.RETRY and final == {Status.FAILED})


def test_abort_and_claim_are_both_moves_from_pending_so_one_etag_write_decides() -> None:
    assert MOVES[Move.ABORT] == (MOVES[Move.CLAIM][0], Status.ABORTED)
    assert Status.ABORTED.final


def test_retry_keeps_an_unknown_outcome_so_the_worker_verifies_first() -> None:
    unknown = lifecycle.fail(
        record(status=Status.PROCESSING),
        now=NOW,
        failure=Failure("graphUnavailable", "x (gave up after 5 deliveries)"),
        resolution=steps.MAYBE_SENT,
    )
    reopened = lifecycle.retry(unknown, now=later(60), by="functionKey")
    assert (reopened.status, reopened.outcome_unknown) == (Status.QUEUED, True)
    assert isinstance(steps.next_step(reopened, REQUEST, later(61), SETTINGS), steps.Verify)
    known = lifecycle.fail(record(status=Status.RETRYING), now=NOW, failure=Failure("throttled", "x"))
    assert isinstance(
        steps.next_step(lifecycle.retry(known, now=later(60), by="k"), REQUEST, later(61), SETTINGS), steps.Cancel
    )


def test_the_three_moves_the_old_diagram_missed_are_in_the_map() -> None:
    assert lifecycle.allowed(Move.FAIL, Status.QUEUED)  # refused by the policy before any claim
    assert lifecycle.allowed(Move.COMPLETE, Status.RETRYING)  # verified gone after an unknown outcome
    assert MOVES[Move.RELEASE] == (frozenset({Status.PROCESSING}), Status.RETRYING)  # the slot-wait rollback


def test_a_claim_is_recorded_before_graph_is_called_and_a_release_undoes_it() -> None:
    claimed = lifecycle.claim(record(), now=NOW, lease_seconds=40)
    assert (claimed.attempts, claimed.outcome_unknown, claimed.in_flight_until) == (1, True, later(40))
    released = lifecycle.release(claimed, now=NOW, due=later(7))
    assert (released.attempts, released.outcome_unknown, released.in_flight_until) == (0, False, None)
    assert released.next_attempt_at == released.delayed_copy_due == later(7)


def test_a_final_move_clears_what_only_pending_requests_carry() -> None:
    pending = record(status=Status.RETRYING, in_flight_until=later(9), outcome_unknown=True, next_attempt_at=later(9))
    done = lifecycle.complete(pending, now=NOW, resolution="verified")
    assert (done.in_flight_until, done.outcome_unknown, done.next_attempt_at, done.delayed_copy_due) == (
        None,
        False,
        None,
        None,
    )


def test_new_records_come_from_accept_or_reject_only() -> None:
    by_ical = QueuedCancelRequest(organizer=ORGANIZER, iCalUId="uid@booking.example", comment="Closed.")
    accepted = lifecycle.accept("a", by_ical, source="http", now=NOW, submitted_by="functionKey")
    assert (accepted.status, accepted.event_id, accepted.target, accepted.has_comment) == (
        Status.QUEUED,
        "",
        "iCalUId:uid@booking.example",
        True,
    )
    rejected = lifecycle.reject("b", Failure("invalidMessage", "eventId: …"), source="queue", now=NOW)
    assert (rejected.status, rejected.error_code, rejected.created_at) == (Status.FAILED, "invalidMessage", NOW)


def test_architecture_shows_the_diagram_drawn_from_the_map() -> None:
    text = (Path(__file__).resolve().parents[2] / "ARCHITECTURE.md").read_text(encoding="utf-8")
    drawn = re.search(r"```mermaid\n(stateDiagram-v2\n.*?)\n```", text, re.DOTALL)
    assert drawn is not None, "ARCHITECTURE.md has no lifecycle diagram"
    assert drawn.group(1) == lifecycle.diagram(), (
        "regenerate it: python -c 'from meeting_cancel import lifecycle; print(lifecycle.diagram())'"
    )


# ----- the next step
UNKNOWN = {"outcome_unknown": True}
NEXT_STEPS: list[tuple[str, dict[str, Any], type[steps.Step]]] = [
    ("a new request is cancelled", {}, steps.Cancel),
    ("a finished request is a duplicate", {"status": Status.CANCELLED}, steps.Duplicate),
    ("a failed request is a duplicate too", {"status": Status.FAILED}, steps.Duplicate),
    (
        "another delivery holds the lease",
        {"status": Status.PROCESSING, "in_flight_until": later(10)},
        steps.ComeBackLater,
    ),
    ("a lapsed lease is verified first", {"status": Status.PROCESSING, "in_flight_until": later(-1)}, steps.Verify),
    ("an unknown outcome is verified first", {"status": Status.RETRYING, **UNKNOWN}, steps.Verify),
    (
        "an early copy of a delayed retry completes",
        {"status": Status.RETRYING, "delayed_copy_due": later(30)},
        steps.Duplicate,
    ),
    ("a copy due now goes ahead", {"status": Status.RETRYING, "delayed_copy_due": later(1)}, steps.Cancel),
    ("a meeting named by iCalUId is resolved first", {"event_id": ""}, steps.Resolve),
    ("another meeting under the same id conflicts", {"organizer": "megan.bowen@contoso.com"}, steps.Conflict),
]


@pytest.mark.parametrize(("situation", "changes", "expected"), NEXT_STEPS, ids=[c[0] for c in NEXT_STEPS])
def test_next_step(situation: str, changes: dict[str, Any], expected: type[steps.Step]) -> None:
    assert isinstance(steps.next_step(record(**changes), REQUEST, NOW, SETTINGS), expected)


def test_the_lease_holder_is_waited_for_past_its_lease() -> None:
    step = steps.next_step(record(status=Status.PROCESSING, in_flight_until=later(10)), REQUEST, NOW, SETTINGS)
    assert step == steps.ComeBackLater(
        10 + steps.BUSY_RETRY_SECONDS, "another delivery is calling Graph for this request"
    )


def test_an_organizer_outside_the_policy_is_refused_with_the_settings_sentence() -> None:
    strict = replace(SETTINGS, organizers=SETTINGS.organizers.parse("@fabrikam.com"))
    step = steps.next_step(record(), REQUEST, NOW, strict)
    assert isinstance(step, steps.Refuse)
    assert step.failure.code == "organizerNotAllowed"
    assert "ALLOWED_ORGANIZERS" in step.failure.message


def test_the_lease_covers_the_slot_wait_the_read_the_call_and_a_margin() -> None:
    step = steps.next_step(record(), REQUEST, NOW, SETTINGS)
    assert step == steps.Cancel(EVENT, steps.SLOT_MAX_WAIT_SECONDS + 2 * 30.0 + steps.LEASE_MARGIN_SECONDS)


@pytest.mark.parametrize(
    ("found", "expected"),
    [([], "iCalUIdNotFound"), (["a", "b"], "iCalUIdAmbiguous"), (["a"], "a")],
)
def test_a_lookup_must_find_exactly_one_event(found: list[str], expected: str) -> None:
    outcome = steps.resolved(QueuedCancelRequest(organizer=ORGANIZER, iCalUId="u@x"), found)
    assert (outcome.code if isinstance(outcome, Failure) else outcome) == expected


# ----- what an error leads to
def throttled(retry_after: float | None, status: int = 429) -> GraphThrottled:
    return GraphThrottled(
        "throttled",
        code="throttled",
        answer=GraphAnswer(status=status),
        outcome_unknown=status != 429,
        retry_after=retry_after,
    )


def transient(*, unknown: bool = True) -> GraphTransientError:
    return GraphTransientError("Graph failed with 503", code="graphUnavailable", answer=ANSWER, outcome_unknown=unknown)


def not_found() -> GraphPermanentError:
    return GraphPermanentError("gone", code="eventNotFound", answer=GraphAnswer(status=404, code="ErrorItemNotFound"))


claimed = {"status": Status.PROCESSING, "attempts": 1, **UNKNOWN, "in_flight_until": later(40)}
ERRORS: list[tuple[str, dict[str, Any], Exception, bool, int, Any]] = [
    (
        "429 with Retry-After backs off that long",
        claimed,
        throttled(7),
        True,
        1,
        error_steps.BackOff(7, Failure.of(throttled(7)), False, "throttled by Graph (429)"),
    ),
    ("429 without it backs off 2 s, then 4 s", {**claimed, "throttle_count": 1}, throttled(None), True, 1, 4.0),
    (
        "throttled past the cap gives up",
        {**claimed, "throttled_since": later(-599)},
        throttled(5),
        True,
        1,
        "throttled",
    ),
    ("a 503 after the call leaves the outcome unknown", claimed, transient(), True, 1, (True, 0.0)),
    ("a failure before the call keeps what the record knew", {}, transient(), False, 1, (False, 0.0)),
    (
        "the identity endpoint failing is retried by the host",
        {},
        IdentityUnavailable("down", scope="s"),
        False,
        1,
        (False, 0.0),
    ),
    ("the fifth delivery gives up and poisons", claimed, transient(), True, 5, "graphUnavailable"),
    (
        "a 404 after an earlier attempt means it is gone",
        {**claimed, "attempts": 2},
        not_found(),
        True,
        1,
        error_steps.Settle(steps.GONE_AFTER_ATTEMPT),
    ),
    ("a 404 on the first attempt is eventNotFound", claimed, not_found(), True, 1, "eventNotFound"),
]


@pytest.mark.parametrize(
    ("situation", "changes", "error", "cancel_sent", "delivery", "expected"), ERRORS, ids=[c[0] for c in ERRORS]
)
def test_after_error(
    situation: str, changes: dict[str, Any], error: Any, cancel_sent: bool, delivery: int, expected: Any
) -> None:
    step = error_steps.after_error(
        record(**changes), error, now=NOW, cancel_sent=cancel_sent, dequeue_count=delivery, policy=POLICY
    )
    match expected:
        case float():
            assert isinstance(step, error_steps.BackOff)
            assert step.delay == expected
        case (bool() as unknown, float() as retry_in):
            assert isinstance(step, error_steps.HostRetry)
            assert (step.outcome_unknown, step.retry_in) == (unknown, retry_in)
        case str():
            assert isinstance(step, error_steps.GiveUp)
            assert step.failure.code == expected
        case _:
            assert step == expected


def test_giving_up_on_the_last_delivery_says_how_many_and_whether_the_cancel_may_have_gone() -> None:
    step = error_steps.after_error(
        record(**claimed), transient(), now=NOW, cancel_sent=True, dequeue_count=5, policy=POLICY
    )
    assert isinstance(step, error_steps.GiveUp)
    assert step.poison
    assert "5 deliveries" in step.failure.message
    assert step.resolution == steps.MAYBE_SENT


# ----- whose message it is (issue 15: another writer reusing an id)
HTTP_REQUEST = QueuedCancelRequest(
    organizer="Adele.Vance@contoso.com", eventId=EVENT, comment="Closed for the holidays."
)


def fingerprinted(request: QueuedCancelRequest) -> StatusRecord:
    accepted = lifecycle.accept("r-1", request, source="http", now=NOW, body_hash=steps.fingerprint(request))
    return replace(accepted, id="r-1")


@pytest.mark.parametrize(
    ("message", "belongs"),
    [
        (HTTP_REQUEST, True),
        (HTTP_REQUEST.model_copy(update={"id": "r-1"}), True),  # the id is not part of the fingerprint
        (HTTP_REQUEST.model_copy(update={"organizer": "adele.vance@CONTOSO.com"}), True),  # UPNs ignore case
        (HTTP_REQUEST.model_copy(update={"comment": "Gotcha: click here"}), False),
        (HTTP_REQUEST.model_copy(update={"comment": None}), False),
        (HTTP_REQUEST.model_copy(update={"eventId": "AAMkOther="}), False),
    ],
)
def test_a_message_belongs_to_a_record_only_with_the_records_fingerprint(
    message: QueuedCancelRequest, belongs: bool
) -> None:
    stored = fingerprinted(HTTP_REQUEST)
    assert steps.belongs_to(stored, message) is belongs
    step = steps.next_step(stored, message, NOW, SETTINGS)
    assert isinstance(step, steps.Cancel if belongs else steps.Conflict)


def test_a_record_fingerprinted_before_organizers_were_folded_still_knows_its_message() -> None:
    legacy = replace(
        fingerprinted(HTTP_REQUEST),
        # as intake stored it before: the request contract's fields, the organizer as sent
        body_hash=idempotency.fingerprint(
            HTTP_REQUEST.model_dump(mode="json", include=set(CancelRequest.model_fields))
        ),
    )
    assert steps.belongs_to(legacy, HTTP_REQUEST)


def test_the_organizers_case_does_not_change_the_fingerprint() -> None:
    lower = HTTP_REQUEST.model_copy(update={"organizer": HTTP_REQUEST.organizer.lower()})
    assert steps.fingerprint(lower) == steps.fingerprint(HTTP_REQUEST)


# ----- an error nobody planned for: on the last delivery the request ends failed
UNEXPECTED: list[tuple[str, dict[str, Any], int, bool, str | None]] = [
    ("before the last delivery the host tries again", {}, 4, False, None),
    ("the last delivery records failed", {}, 5, False, "failed"),
    ("after its own claim the cancel may have gone", claimed, 5, True, steps.MAYBE_SENT),
    ("another delivery's lease is left to it", claimed, 5, False, None),
    (
        "a lapsed lease of another delivery is failed",
        {**claimed, "in_flight_until": later(-1)},
        5,
        False,
        steps.MAYBE_SENT,
    ),
    ("a final record stays as it is", {"status": Status.CANCELLED}, 5, False, None),
    ("another request's record is left alone", {"organizer": "megan.bowen@contoso.com"}, 5, False, None),
]


@pytest.mark.parametrize(
    ("situation", "changes", "delivery", "claimed_here", "expected"), UNEXPECTED, ids=[c[0] for c in UNEXPECTED]
)
def test_after_unexpected(
    situation: str, changes: dict[str, Any], delivery: int, claimed_here: bool, expected: str | None
) -> None:
    step = error_steps.after_unexpected(
        record(**changes),
        REQUEST,
        OverflowError("date value out of range"),
        now=NOW,
        claimed_here=claimed_here,
        dequeue_count=delivery,
        policy=POLICY,
    )
    if expected is None:
        assert step is None
        return
    assert isinstance(step, error_steps.GiveUp)
    assert step.poison
    assert step.failure.code == "internalError"
    assert "OverflowError" in step.failure.message
    assert step.resolution == (expected if expected == steps.MAYBE_SENT else None)


def test_no_record_means_nothing_to_fail() -> None:
    assert (
        error_steps.after_unexpected(
            None, REQUEST, KeyError("id"), now=NOW, claimed_here=False, dequeue_count=5, policy=POLICY
        )
        is None
    )


def test_an_admitted_request_is_accepted_until_its_message_is_known_and_reads_as_queued() -> None:
    from meeting_cancel.intake import status_view

    admitted = lifecycle.admit("r-2", REQUEST, source="http", now=NOW)
    assert admitted.status == Status.ACCEPTED
    assert not admitted.status.final
    assert status_view(admitted)["status"] == "queued"
    confirmed = lifecycle.confirm_queued(admitted, now=later(1))
    assert (confirmed.status, confirmed.updated_at) == (Status.QUEUED, later(1))
    claimed = lifecycle.claim(admitted, now=NOW, lease_seconds=40)  # the worker claims from accepted too
    assert claimed.status == Status.PROCESSING
    with pytest.raises(IllegalMove):
        lifecycle.confirm_queued(confirmed, now=NOW)
