"""Schemathesis hooks for tests/integration/test_connector.py (loaded through ``SCHEMATHESIS_HOOKS``).

Swagger 2.0, the connector's format, cannot state the rules between fields: one of ``eventId`` and
``iCalUId``; ``occurrenceDate`` with ``timeZone`` and the eventId of a series; a time zone that
exists; ``to`` after ``from`` within 732 days; days between 1900 and 2999. A request generated as
valid ("positive") is made to keep those rules before it is sent, so ``positive_data_acceptance``
holds the service to accepting everything else the schema allows. Negative cases are sent as
generated: the service must refuse them.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis import GenerationMode

EVENT_ID = "AAMkAGI2TG93AAA="
WINDOW = ("2026-12-01T00:00:00Z", "2026-12-31T00:00:00Z")


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE or not isinstance(case.body, dict):
        return
    operation = case.operation.label
    if operation == "POST /cancellations":
        case.body = cancellation_rules(case.body)
    elif operation == "POST /organizers/{organizer}/cancellations":
        case.body = {**case.body, "from": WINDOW[0], "to": WINDOW[1]}


def cancellation_rules(body: dict[str, Any]) -> dict[str, Any]:
    fixed = dict(body)
    if "occurrenceDate" in fixed or "timeZone" in fixed:
        fixed.pop("iCalUId", None)
        fixed.setdefault("eventId", EVENT_ID)
        fixed["occurrenceDate"] = "2026-12-08"
        fixed["timeZone"] = "Europe/Berlin"
    if "eventId" in fixed:
        fixed.pop("iCalUId", None)
    elif "iCalUId" not in fixed:
        fixed["eventId"] = EVENT_ID
    return fixed
