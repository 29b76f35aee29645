"""Whether a cancel with an unknown outcome took effect, judged by the event's shape
(``steps.Verify``): the answer is "gone" or "still there", never "the attendees were told" (Graph
accepts a cancel with 202 before it sends the notices).

* A single meeting or a series master moves to Deleted Items and its REST id changes on the move,
  so a 404 ``ErrorItemNotFound`` on the id we cancelled shows it gone (event-cancel.md;
  microsoft-graph-docs-contrib#8137).
* An occurrence leaves its master's ``instances`` while the master stays (closeio/sync-engine#389),
  so it is looked for there, around its start; a 404 on the master means the series went too.
* When the shape was not recorded (the message said how many attendees there are, so the event
  was not read before the cancel), the event is read: a 404 shows it gone, and an occurrence found
  is checked among its master's instances as above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import GraphPermanentError
from .occurrences import OCCURRENCE_TYPES, verification_window
from .steps import Verify

if TYPE_CHECKING:
    from .service import Service


def gone(service: Service, organizer: str, verify: Verify, *, request_id: str) -> bool:
    graph, now = service.graph, service.clock()
    if verify.kind in OCCURRENCE_TYPES and verify.series_master_id:
        window = verification_window(verify.occurrence_start, now)
        return graph.occurrence_gone(organizer, verify.series_master_id, verify.event_id, window, request_id=request_id)
    if verify.kind is not None:
        return graph.event_gone(organizer, verify.event_id, request_id=request_id)
    try:
        facts = graph.event_facts(organizer, verify.event_id, request_id=request_id)
    except GraphPermanentError as error:
        if error.answer.status == 404 and error.answer.code == "ErrorItemNotFound":
            return True
        raise
    if facts.is_occurrence and facts.series_master_id:
        window = verification_window(facts.start, now)
        return graph.occurrence_gone(organizer, facts.series_master_id, verify.event_id, window, request_id=request_id)
    return facts.is_cancelled
