"""How Graph's answers are classified: transient or permanent, and which of our codes a caller
acts on (DESIGN section 4). Status and ``error.code`` decide, except where Graph gives two
situations one code: a 403 ``ErrorAccessDenied`` is told apart by its message, the only thing that
differs (a missing permission answers "Access is denied. Check credentials and try again.", as
users report for calendarView and events: microsoftgraph-postman-collections#48,
outlook-dev-docs#676; an Exchange application access policy or RBAC scope answers "Access to OData
is disabled." as auth-limit-mailbox-access.md documents, lately with ": [RAOP] : Blocked by
tenant configured AppOnly AccessPolicy settings." after it).
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import requests

from .errors import GraphAnswer, GraphPermanentError, GraphThrottled, GraphTransientError
from .records import utcnow

# (HTTP status, Graph error code) -> our code; a None code matches any code with that status.
PERMANENT_CODES: dict[tuple[int, str | None], str] = {
    (400, "ErrorInvalidIdMalformed"): "invalidEventId",
    (400, "ErrorCalendarIsNotOrganizer"): "notOrganizer",
    (400, None): "invalidRequest",
    (403, None): "accessDenied",
    (404, "ErrorItemNotFound"): "eventNotFound",
    (404, "ErrorInvalidUser"): "organizerNotFound",
    (404, "MailboxNotEnabledForRESTAPI"): "mailboxNotEnabled",
    (404, None): "notFound",
}
UNKNOWN_OUTCOME_STATUSES = frozenset({500, 502, 503, 504})
ACCESS_POLICY_MESSAGE = "access to odata is disabled"
MISSING_PERMISSION_MESSAGE = "access is denied"

# What a caller does about each code: our message first, Graph's own after it.
ADVICE: dict[str, str] = {
    "permissionMissing": "Graph refused the app: the managed identity lacks the application permission "
    "Calendars.ReadWrite (or its admin consent). Grant it (infra/scripts/grant-graph-permission.sh); new "
    "tokens carry it.",
    "mailboxOutsideAccessPolicy": "An Exchange application access policy or RBAC for Applications scope "
    "excludes this mailbox. Add the mailbox to the app's scope (check with Test-ServicePrincipalAuthorization "
    "or Test-ApplicationAccessPolicy); a change can take more than an hour to reach Graph.",
    "mailboxNotEnabled": "Graph cannot reach an Exchange Online mailbox for the organizer: it is inactive, "
    "soft-deleted, hosted on-premises, or has no Exchange Online licence. When offboarding, cancel the "
    "meetings before removing the leaver's licence; restore the licence (or the mailbox) to cancel them now.",
    "exchangeError": "Exchange Online refused the call (ExtensionError wraps a failure inside Exchange). A "
    "mailbox hosted on-premises or being moved answers so: cancel from Outlook, or once the mailbox is in "
    "Exchange Online.",
}


def classify(response: requests.Response) -> GraphTransientError | GraphPermanentError:
    answer = graph_answer(response)
    status = response.status_code
    retry_after = retry_after_seconds(response)
    if status == 429 or (status == 503 and retry_after is not None):
        return GraphThrottled(
            f"Graph throttled the request ({status})",
            code="throttled",
            answer=answer,
            outcome_unknown=status != 429,
            retry_after=retry_after,
        )
    if status in UNKNOWN_OUTCOME_STATUSES or status >= 500:
        return GraphTransientError(
            f"Graph failed with {status}; the cancel may have applied",
            code="graphUnavailable",
            answer=answer,
            outcome_unknown=True,
        )
    if status == 401:
        return GraphPermanentError(
            "Graph rejected the app's token twice: check the managed identity's "
            "Calendars.ReadWrite application permission",
            code="unauthorized",
            answer=answer,
        )
    code = our_code(status, answer)
    graph_said = answer.message or f"Graph answered {status}"
    reason = f"{ADVICE[code]} Graph said: {graph_said}" if code in ADVICE else graph_said
    return GraphPermanentError(reason, code=code, answer=answer)


def our_code(status: int, answer: GraphAnswer) -> str:
    """Our code for a permanent answer; the two 403s share Graph's code and differ in the message."""
    message = (answer.message or "").lower()
    if status == 403 and ACCESS_POLICY_MESSAGE in message:
        return "mailboxOutsideAccessPolicy"
    if answer.code and answer.code.lower() == "extensionerror":
        return "exchangeError"
    if status == 403 and answer.code == "ErrorAccessDenied" and message.startswith(MISSING_PERMISSION_MESSAGE):
        return "permissionMissing"
    return PERMANENT_CODES.get((status, answer.code)) or PERMANENT_CODES.get((status, None), "graphRejected")


def graph_answer(response: requests.Response) -> GraphAnswer:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    error = error if isinstance(error, dict) else {}
    inner = error.get("innerError") or error.get("innererror") or {}
    return GraphAnswer(
        status=response.status_code,
        code=error.get("code"),
        message=error.get("message"),
        request_id=inner.get("request-id") or response.headers.get("request-id"),
        client_request_id=inner.get("client-request-id") or response.headers.get("client-request-id"),
        date=inner.get("date") or response.headers.get("Date"),
    )


def retry_after_seconds(response: requests.Response) -> float | None:
    """Retry-After as seconds, from either of its two forms (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


def log_fields(response: requests.Response) -> dict[str, object]:
    answer = graph_answer(response)
    return {
        "graph_status": answer.status,
        "graph_code": answer.code,
        "graph_request_id": answer.request_id,
        "graph_client_request_id": answer.client_request_id,
        "graph_date": answer.date,
    }
