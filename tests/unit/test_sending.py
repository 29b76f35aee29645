"""What the read before a cancel decides, and when a recipient reservation is given back."""

from __future__ import annotations

from meeting_cancel.errors import (
    GraphAnswer,
    GraphPermanentError,
    GraphThrottled,
    GraphTransientError,
    IdentityUnavailable,
)
from meeting_cancel.occurrences import EventFacts
from meeting_cancel.sending import certainly_not_sent, refusal


def facts(rest_id: str = "AAMkREST=", *, organizer: bool = True) -> EventFacts:
    return EventFacts(rest_id=rest_id, kind="singleInstance", is_organizer=organizer, is_cancelled=False, attendees=3)


def test_an_attendee_copy_is_refused_before_anything_is_sent() -> None:
    failure = refusal(facts(organizer=False), "AAMkREST=")
    assert failure is not None
    assert failure.code == "notOrganizer"


def test_an_id_graph_does_not_echo_is_refused_with_the_rest_id() -> None:
    failure = refusal(facts("AAMkREST="), "AAMkIMMUTABLE=")
    assert failure is not None
    assert failure.code == "immutableIdNotSupported"
    assert failure.message.endswith("AAMkREST=")


def test_the_organizers_rest_id_may_be_cancelled() -> None:
    assert refusal(facts("AAMkREST="), "AAMkREST=") is None


def test_a_reservation_is_given_back_only_when_nothing_can_have_been_sent() -> None:
    answer = GraphAnswer(status=None)
    assert certainly_not_sent(GraphPermanentError("no", code="accessDenied", answer=answer))
    assert certainly_not_sent(GraphThrottled("slow", code="throttled", answer=answer, outcome_unknown=False))
    assert certainly_not_sent(IdentityUnavailable("down", scope="s"))
    assert not certainly_not_sent(GraphTransientError("?", code="graphNoAnswer", answer=answer, outcome_unknown=True))
