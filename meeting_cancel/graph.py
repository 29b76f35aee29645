"""The Microsoft Graph calls the worker makes, and how their answers are classified.

One credential and one pooled ``requests.Session`` per process: tokens are cached by
azure-identity, connections are reused, and every call has a connect and a read timeout.
Answers are classified on status and ``error.code`` (never the message), per DESIGN section 4.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from requests.adapters import HTTPAdapter

from .config import Settings
from .errors import GraphAnswer, GraphPermanentError, GraphThrottled, GraphTransientError, IdentityUnavailable
from .records import utcnow

log = logging.getLogger(__name__)
USER_AGENT = "meeting-cancel-service/1.0"
CONNECT_TIMEOUT_SECONDS = 5.0
USER_CACHE_SECONDS = 300.0

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


def graph_path(*segments: str) -> str:
    """Joins path segments, each percent-encoded exactly once, so no value can add a segment."""
    return "/".join(quote(segment, safe="") for segment in segments)


def make_credential(settings: Settings) -> TokenCredential:
    from azure.identity import EnvironmentCredential, ManagedIdentityCredential  # loaded on first use

    if settings.graph_credential == "environment":
        return EnvironmentCredential()
    return ManagedIdentityCredential(client_id=settings.azure_client_id)


class GraphClient:
    def __init__(self, settings: Settings, credential_factory: Callable[[], TokenCredential] | None = None) -> None:
        self._base = settings.graph_base_url
        self._scope = settings.graph_scope
        self._timeout = (CONNECT_TIMEOUT_SECONDS, settings.graph_timeout_seconds)
        self._credential_factory = credential_factory or (lambda: make_credential(settings))
        self._credential = self._credential_factory()
        self._credential_lock = threading.Lock()
        self._session = requests.Session()
        # No proxy, .netrc or CA-bundle lookups in the environment on every call (requests'
        # ``trust_env``): Graph is called directly, and the lookups cost CPU per call.
        self._session.trust_env = False
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers["User-Agent"] = USER_AGENT
        self._user_ids: dict[str, tuple[str, float]] = {}
        self._clock: Callable[[], float] = time.monotonic

    def prepare_token(self) -> None:
        """Fetches (or reuses) the token before an attempt is recorded, so an identity outage is
        never mistaken for a Graph call with an unknown outcome."""
        self._token(refresh=False)

    def cancel(self, organizer: str, event_id: str, comment: str | None, *, request_id: str) -> None:
        """POSTs the cancel; returns on 202 and raises a classified ``GraphError`` otherwise."""
        body: dict[str, str] = {"comment": comment} if comment else {}
        url = f"{self._base}/{graph_path('users', organizer, 'events', event_id, 'cancel')}"
        self._call("POST", url, request_id=request_id, json=body)

    def event_exists(self, organizer: str, event_id: str, *, request_id: str) -> bool:
        """Reads the event after an unknown outcome: False when Graph no longer has it."""
        url = f"{self._base}/{graph_path('users', organizer, 'events', event_id)}"
        try:
            response = self._call("GET", url, request_id=request_id, params={"$select": "id,isCancelled"})
        except GraphPermanentError as error:
            if error.answer.status == 404 and error.answer.code == "ErrorItemNotFound":
                return False
            raise
        return not bool(response.json().get("isCancelled"))

    def user_object_id(self, user: str, *, request_id: str) -> str:
        """The object id of a user named by userPrincipalName, cached for a few minutes.

        ``GET /users/{upn}?$select=id`` needs the application permission User.Read.All (Graph's
        "Get user" reference); it is asked only in entra mode, for a signed-in user who names the
        organizer by UPN. A missing user raises ``GraphPermanentError`` with status 404.
        """
        key = user.lower()
        now = self._clock()
        cached = self._user_ids.get(key)
        if cached and cached[1] > now:
            return cached[0]
        url = f"{self._base}/{graph_path('users', user)}"
        object_id = str(self._call("GET", url, request_id=request_id, params={"$select": "id"}).json()["id"]).lower()
        self._user_ids[key] = (object_id, now + USER_CACHE_SECONDS)
        return object_id

    def find_by_ical_uid(self, organizer: str, ical_uid: str, *, request_id: str) -> list[str]:
        """The ids of the organizer's events with this iCalUId (a single meeting or a series master)."""
        quoted = ical_uid.replace("'", "''")
        url = f"{self._base}/{graph_path('users', organizer, 'events')}"
        params = {"$filter": f"iCalUId eq '{quoted}'", "$select": "id,type,isOrganizer"}
        events = self._call("GET", url, request_id=request_id, params=params).json().get("value", [])
        return [str(e["id"]) for e in events]

    def occurrence_ids(
        self, organizer: str, series_id: str, start: datetime, end: datetime, *, request_id: str
    ) -> list[str]:
        """The ids of a series' occurrences that start within [start, end), not already cancelled."""
        url = f"{self._base}/{graph_path('users', organizer, 'events', series_id, 'instances')}"
        params = {"startDateTime": _utc(start), "endDateTime": _utc(end), "$select": "id,start,isCancelled"}
        events = self._call("GET", url, request_id=request_id, params=params).json().get("value", [])
        return [str(e["id"]) for e in events if not e.get("isCancelled")]

    def calendar_view(
        self, organizer: str, start: datetime, end: datetime, *, request_id: str, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every event of the organizer's calendar in [start, end), page after page (@odata.nextLink)."""
        url: str | None = f"{self._base}/{graph_path('users', organizer, 'calendarView')}"
        params: dict[str, str] | None = {
            "startDateTime": _utc(start),
            "endDateTime": _utc(end),
            "$top": str(page_size),
            "$select": "id,subject,start,end,type,seriesMasterId,isOrganizer,isCancelled,attendees",
        }
        while url:
            page = self._call(
                "GET", url, request_id=request_id, params=params, headers={"Prefer": 'outlook.timezone="UTC"'}
            ).json()
            yield from page.get("value", [])
            url, params = page.get("@odata.nextLink"), None
            if url and not url.startswith(self._base + "/"):
                raise GraphPermanentError(
                    "Graph's nextLink points elsewhere", code="graphRejected", answer=GraphAnswer(status=None)
                )

    def _call(
        self, method: str, url: str, *, request_id: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        extra_headers = headers or {}
        for refreshed in (False, True):
            headers = {
                **extra_headers,
                "Authorization": f"Bearer {self._token(refresh=refreshed)}",
                "client-request-id": request_id,
                "return-client-request-id": "true",
            }
            try:
                response = self._session.request(method, url, headers=headers, timeout=self._timeout, **kwargs)
            except requests.ConnectTimeout as error:
                raise GraphTransientError(
                    f"could not connect to Graph: {type(error).__name__}",
                    code="graphUnreachable",
                    answer=GraphAnswer(status=None),
                    outcome_unknown=False,
                ) from None
            except requests.RequestException as error:
                raise GraphTransientError(
                    f"no answer from Graph: {type(error).__name__}",
                    code="graphNoAnswer",
                    answer=GraphAnswer(status=None),
                    outcome_unknown=True,
                ) from None
            if response.status_code == 401 and not refreshed:
                log.warning("Graph rejected the token (401); fetching a new one once", extra=_log_fields(response))
                continue
            if response.ok:
                return response
            raise classify(response)
        raise AssertionError("unreachable")

    def _token(self, *, refresh: bool) -> str:
        """The cached token; the lock makes concurrent cold starts share one token request."""
        with self._credential_lock:
            if refresh:
                self._credential = self._credential_factory()
            try:
                return self._credential.get_token(self._scope).token
            except AzureError as error:
                # A credential that failed once may keep reporting itself unavailable; start afresh
                # so the next delivery asks the endpoint again.
                self._credential = self._credential_factory()
                raise IdentityUnavailable(
                    type(error).__name__ + ": " + str(error).splitlines()[0], scope=self._scope
                ) from None


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    code = PERMANENT_CODES.get((status, answer.code)) or PERMANENT_CODES.get((status, None), "graphRejected")
    return GraphPermanentError(answer.message or f"Graph answered {status}", code=code, answer=answer)


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


def _log_fields(response: requests.Response) -> dict[str, Any]:
    answer = graph_answer(response)
    return {
        "graph_status": answer.status,
        "graph_code": answer.code,
        "graph_request_id": answer.request_id,
        "graph_client_request_id": answer.client_request_id,
        "graph_date": answer.date,
    }
