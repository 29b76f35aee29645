"""The Microsoft Graph calls the worker and the offboarding make.

One credential and one pooled ``requests.Session`` per process: tokens are cached by
azure-identity, connections are reused, and every call has a connect and a read timeout. Each
call sends a fresh GUID as ``client-request-id`` (Graph's best practices: "generate a unique GUID
and send it on each Microsoft Graph REST request", and some workloads refuse anything else); the
caller's tracking id stays in our logs. Every call is noted in the current ``journal`` (the
worker shows them in the request's status) with Graph's ``request-id``, the id to quote to
Microsoft. Answers are classified in ``graph_answers``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from requests.adapters import HTTPAdapter

from . import telemetry
from .config import Settings
from .errors import GraphAnswer, GraphError, GraphPermanentError, GraphTransientError, IdentityUnavailable
from .graph_answers import (
    PERMANENT_CODES,
    UNKNOWN_OUTCOME_STATUSES,
    classify,
    graph_answer,
    log_fields,
    retry_after_seconds,
)
from .graph_journal import GraphCall, journal, note
from .occurrences import EVENT_FIELDS, INSTANCE_FIELDS, EventFacts

__all__ = [
    "PERMANENT_CODES",
    "UNKNOWN_OUTCOME_STATUSES",
    "GraphCall",
    "GraphClient",
    "classify",
    "graph_answer",
    "graph_path",
    "journal",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)
USER_AGENT = "meeting-cancel-service/1.0"
CONNECT_TIMEOUT_SECONDS = 5.0
USER_CACHE_SECONDS = 300.0
PAGE_SIZE = 100


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
        url = self._url("users", organizer, "events", event_id, "cancel")
        self._call("POST", url, request_id=request_id, operation="cancel", json=body)

    def event_facts(self, organizer: str, event_id: str, *, request_id: str) -> EventFacts:
        """Reads the event before cancelling it: organizer, attendees, shape. Asked without
        ``Prefer: IdType="ImmutableId"``, Graph answers with the REST id, also when the caller
        named the event by its immutable id."""
        url = self._url("users", organizer, "events", event_id)
        event = self._call("GET", url, request_id=request_id, operation="read", params={"$select": EVENT_FIELDS})
        return EventFacts.of(event.json())

    def event_gone(self, organizer: str, event_id: str, *, request_id: str) -> bool:
        """A single meeting or series master after our own cancel: a 404 on its REST id is
        Graph's sign that it moved to Deleted Items (its REST id changed; graph-docs-contrib#8137)."""
        url = self._url("users", organizer, "events", event_id)
        try:
            self._call("GET", url, request_id=request_id, operation="verify", params={"$select": "id,isCancelled"})
        except GraphPermanentError as error:
            if error.answer.status == 404 and error.answer.code == "ErrorItemNotFound":
                return True
            raise
        return False

    def occurrence_gone(
        self, organizer: str, master_id: str, occurrence_id: str, window: tuple[datetime, datetime], *, request_id: str
    ) -> bool:
        """An occurrence after our own cancel: the master stays, the occurrence leaves its
        ``instances`` (closeio/sync-engine#389: cancelled occurrences are not returned)."""
        try:
            listed = self.instances(organizer, master_id, *window, request_id=request_id, operation="verify")
        except GraphPermanentError as error:
            if error.answer.status == 404 and error.answer.code == "ErrorItemNotFound":
                return True  # the whole series is gone
            raise
        return all(instance.get("id") != occurrence_id or instance.get("isCancelled") for instance in listed)

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
        url = self._url("users", user)
        response = self._call("GET", url, request_id=request_id, operation="user", params={"$select": "id"})
        object_id = str(response.json()["id"]).lower()
        self._user_ids[key] = (object_id, now + USER_CACHE_SECONDS)
        return object_id

    def find_by_ical_uid(self, organizer: str, ical_uid: str, *, request_id: str) -> list[str]:
        """The ids of the organizer's events with this iCalUId (a single meeting or a series master)."""
        quoted = ical_uid.replace("'", "''")
        url = self._url("users", organizer, "events")
        params = {"$filter": f"iCalUId eq '{quoted}'", "$select": "id,type,isOrganizer"}
        events = self._call("GET", url, request_id=request_id, operation="find", params=params).json().get("value", [])
        return [str(e["id"]) for e in events]

    def instances(
        self,
        organizer: str,
        series_id: str,
        start: datetime,
        end: datetime,
        *,
        request_id: str,
        operation: str = "instances",
    ) -> list[dict[str, Any]]:
        """A series' occurrences and exceptions overlapping [start, end], every page, in UTC."""
        url = self._url("users", organizer, "events", series_id, "instances")
        params = {
            "startDateTime": _utc(start),
            "endDateTime": _utc(end),
            "$top": str(PAGE_SIZE),
            "$select": INSTANCE_FIELDS,
        }
        return list(self._pages(url, params, request_id=request_id, operation=operation))

    def series(self, organizer: str, master_id: str, *, request_id: str) -> dict[str, Any]:
        """A series master's ``recurrence`` (pattern and range): the whole span it cancels."""
        url = self._url("users", organizer, "events", master_id)
        params = {"$select": "id,subject,recurrence,start,attendees"}
        return dict(self._call("GET", url, request_id=request_id, operation="series", params=params).json())

    def calendar_view(
        self, organizer: str, start: datetime, end: datetime, *, request_id: str, page_size: int = PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every event of the organizer's calendar overlapping [start, end], page after page.
        Not in start order (graph-docs#4517): callers must not rely on order."""
        url = self._url("users", organizer, "calendarView")
        params = {
            "startDateTime": _utc(start),
            "endDateTime": _utc(end),
            "$top": str(page_size),
            "$select": "id,subject,start,end,type,seriesMasterId,isOrganizer,isCancelled,isAllDay,attendees",
        }
        return self._pages(url, params, request_id=request_id, operation="calendarView")

    def _pages(self, url: str, params: dict[str, str], *, request_id: str, operation: str) -> Iterator[dict[str, Any]]:
        """Follows ``@odata.nextLink`` (which carries the query) while it stays on Graph's root."""
        next_url: str | None = url
        next_params: dict[str, str] | None = params
        while next_url:
            page = self._call(
                "GET",
                next_url,
                request_id=request_id,
                operation=operation,
                params=next_params,
                headers={"Prefer": 'outlook.timezone="UTC"'},
            ).json()
            yield from page.get("value", [])
            next_url, next_params = page.get("@odata.nextLink"), None
            if next_url and not next_url.startswith(self._base + "/"):
                raise GraphPermanentError(
                    "Graph's nextLink points elsewhere", code="graphRejected", answer=GraphAnswer(status=None)
                )

    def _url(self, *segments: str) -> str:
        return f"{self._base}/{graph_path(*segments)}"

    def _call(
        self,
        method: str,
        url: str,
        *,
        request_id: str,
        operation: str,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        extra_headers = headers or {}
        for refreshed in (False, True):
            client_request_id = str(uuid.uuid4())
            headers = {
                **extra_headers,
                "Authorization": f"Bearer {self._token(refresh=refreshed)}",
                "client-request-id": client_request_id,
                "return-client-request-id": "true",
            }
            try:
                response = self._timed(method, url, operation, headers=headers, timeout=self._timeout, **kwargs)
            except requests.RequestException as error:
                note(operation, client_request_id, None, None)
                raise _no_answer(error, client_request_id) from None
            note(operation, client_request_id, response.headers.get("request-id"), response.status_code)
            if response.status_code == 401 and not refreshed:
                log.warning(
                    "Graph rejected the token (401); fetching a new one once",
                    extra={**log_fields(response), "request_id": request_id},
                )
                continue
            if response.ok:
                return response
            refusal = classify(response)
            refusal.answer = replace(refusal.answer, client_request_id=client_request_id)
            log.info(
                "Graph answered %s to %s (%s)",
                response.status_code,
                operation,
                refusal.code,
                extra={**log_fields(response), "request_id": request_id, "graph_client_request_id": client_request_id},
            )
            raise refusal
        raise AssertionError("unreachable")

    def _timed(self, method: str, url: str, operation: str, **kwargs: Any) -> requests.Response:
        """One HTTP call, measured for the latency and throttling metrics (``telemetry``)."""
        started = time.perf_counter()
        status, throttled = "noAnswer", False
        try:
            response = self._session.request(method, url, **kwargs)
            status = str(response.status_code)
            throttled = response.status_code == 429 or (
                response.status_code == 503 and "Retry-After" in response.headers
            )
            return response
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            telemetry.graph_answered(operation, url, status, elapsed, throttled=throttled)

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


def _no_answer(error: requests.RequestException, client_request_id: str) -> GraphError:
    answer = GraphAnswer(status=None, client_request_id=client_request_id)
    if isinstance(error, requests.ConnectTimeout):
        return GraphTransientError(
            f"could not connect to Graph: {type(error).__name__}",
            code="graphUnreachable",
            answer=answer,
            outcome_unknown=False,
        )
    return GraphTransientError(
        f"no answer from Graph: {type(error).__name__}", code="graphNoAnswer", answer=answer, outcome_unknown=True
    )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
