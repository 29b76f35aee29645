"""What the read before a cancel decides, and the mailbox's recipient budget around the send.

* **Only the organizer can cancel.** Graph documents an attendee's cancel as HTTP 400 with the
  message "You need to be an organizer to cancel a meeting." and no error code (event-cancel.md),
  so the code cannot be matched on. The event's ``isOrganizer`` decides instead: read before the
  cancel when the worker reads the event anyway, or after a 400 when it did not (``explained``).
* **Immutable ids are refused, with the REST id to send instead.** An immutable id does not change
  when cancel moves the item to Deleted Items (outlook-immutable-id.md: it "will NOT change if the
  item is moved to a different folder"), the v1.0 event has no ``parentFolderId``, and
  ``isCancelled`` on the organizer's copy after a cancel is undocumented, so after an unknown
  outcome nothing Graph shows tells "cancelled" from "still there"; a second cancel would mail
  every attendee again. A REST id does tell (404 once moved). Asked without ``Prefer:
  IdType="ImmutableId"``, Graph answers with the REST id, so a read whose id differs from the one
  sent shows that the caller sent another form of id.
* **Notices wait instead of bouncing.** Each cancellation mails every attendee, rooms included,
  from the organizer's mailbox; Exchange Online allows 10,000 recipients in any 24 hours per
  mailbox (``recipient_budget``). Past it the request waits (``retrying`` with ``nextAttemptAt``)
  and its reservation is given back whenever the cancel was certainly not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .errors import GraphError, GraphPermanentError, GraphTransientError, IdentityUnavailable
from .failures import Failure
from .occurrences import EventFacts
from .recipient_budget import RecipientBudget, Reservation

if TYPE_CHECKING:
    from .graph import GraphClient

NOT_ORGANIZER = (
    "The organizer mailbox is not the organizer of this meeting (Graph: isOrganizer is false), and only the "
    "organizer can cancel it: send the organizer's mailbox, or remove the meeting from this calendar in Outlook."
)


@dataclass(frozen=True)
class Wait:
    """The notice does not fit the mailbox's recipient budget yet: come back after ``delay``."""

    delay: float
    failure: Failure


def refusal(facts: EventFacts, sent_id: str) -> Failure | None:
    """Why the cancel must not be sent, from the read before it; None when it may be sent."""
    if not facts.is_organizer:
        return Failure("notOrganizer", NOT_ORGANIZER)
    if facts.rest_id != sent_id:
        return Failure(
            "immutableIdNotSupported",
            'The eventId is not the event\'s REST id (an immutable id, sent with Prefer: IdType="ImmutableId", '
            "stays the same when the cancelled meeting moves to Deleted Items, so a cancel with an unknown outcome "
            f"could not be checked). Send the REST id instead: {facts.rest_id}",
        )
    return None


def reserve(
    budget: RecipientBudget, organizer: str, recipients: int | None, *, now: datetime
) -> Reservation | Wait | Failure | None:
    """Counts the notice against the mailbox's rolling 24 hours: a reservation, a wait, or a
    failure when one notice has more recipients than the whole day allows. None: nothing to count."""
    if not recipients:
        return None
    if recipients > budget.limit:
        return Failure(
            "overRecipientLimit",
            f"The meeting has {recipients} recipients; the mailbox may send to {budget.limit} in 24 hours "
            "(MAILBOX_RECIPIENTS_PER_DAY), so its notice can never go out.",
        )
    outcome = budget.reserve(organizer, recipients)
    if isinstance(outcome, Reservation):
        return outcome
    due = outcome
    return Wait(
        max(1.0, (due - now).total_seconds()),
        Failure(
            "recipientLimitReached",
            f"The mailbox has sent to close to its {budget.limit} recipients in the last 24 hours (Exchange Online's "
            f"recipient rate limit); the notice to {recipients} waits until {due.isoformat(timespec='seconds')} "
            "instead of bouncing.",
        ),
    )


def certainly_not_sent(error: GraphError | IdentityUnavailable) -> bool:
    """Whether a failed cancel left the notices unsent, so their reservation can be given back."""
    if isinstance(error, IdentityUnavailable | GraphPermanentError):
        return True
    return isinstance(error, GraphTransientError) and not error.outcome_unknown


def explained(
    graph: GraphClient,
    organizer: str,
    event_id: str,
    error: GraphPermanentError,
    facts: EventFacts | None,
    *,
    request_id: str,
) -> GraphPermanentError:
    """A 400 from cancel becomes ``notOrganizer`` when the event's ``isOrganizer`` is false,
    whatever Graph's code; it is read now unless the read before the cancel already did."""
    if error.answer.status != 400:
        return error
    if facts is None:
        try:
            facts = graph.event_facts(organizer, event_id, request_id=request_id)
        except (GraphError, IdentityUnavailable):
            return error
    if facts.is_organizer:
        return error
    return GraphPermanentError(NOT_ORGANIZER, code="notOrganizer", answer=error.answer)
