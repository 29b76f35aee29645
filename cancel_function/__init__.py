"""HTTP adapter: POST and GET cancellation requests, and the health probe.

Parses the request, calls the domain (``meeting_cancel.intake``) and maps its answer to HTTP.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from meeting_cancel import batches, callers, config, intake, service
from meeting_cancel.errors import StorageUnavailable
from meeting_cancel.problems import Problem, storage_unavailable
from meeting_cancel.records import StatusRecord

from .responses import json_response, problem_response, status_url

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)
# Read once, when the host indexes the functions: functionKey mode keeps the host's key check,
# entra mode leaves the gate to App Service Authentication (config.http_auth_level says why).
CALLER_AUTH_LEVEL = func.AuthLevel(config.http_auth_level())
Handler = Callable[..., func.HttpResponse]


def answers_problems(handler: Handler) -> Handler:
    """Turns the domain's problems into their problem+json responses; the one place a storage
    outage becomes the 503 that says nothing was queued. The worker reads the handler's own
    signature through ``functools.wraps`` and passes what it declares (``context``)."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest, **declared: Any) -> func.HttpResponse:
        try:
            return handler(req, **declared)
        except Problem as problem:
            return problem_response(problem)
        except StorageUnavailable as error:
            log.error("%s %s refused: %s", req.method, req.url.split("?")[0], error)
            return problem_response(storage_unavailable())

    return wrapper


def trace_of(req: func.HttpRequest, context: func.Context) -> str | None:
    """The trace the queue message continues: the Functions host's own activity for this request
    (a child of the caller's ``traceparent`` when it sent one, so the host's Request telemetry and
    the worker's span are one trace), else the caller's header. ``trace_parent`` is the worker's
    name for it (azure-functions-python-worker ``bindings/tracecontext.py``)."""
    host = getattr(context.trace_context, "trace_parent", None)
    return host if isinstance(host, str) and host else req.headers.get("traceparent")


def caller_of(req: func.HttpRequest, app: service.Service) -> callers.Caller:
    """Who calls; the query is read for the function key a caller may send as ``code``."""
    return callers.identify(req.headers, app.settings, req.params)


@bp.route(route="cancellations", methods=["POST"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def submit_cancellation(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    app = service.current()
    accepted = intake.submit(
        app,
        req.get_body(),
        caller=caller_of(req, app),
        content_type=req.headers.get("Content-Type"),
        idempotency_key=req.headers.get("Idempotency-Key"),
        traceparent=trace_of(req, context),
    )
    return _status_response(req, accepted.record)


@bp.route(route="cancellations/{id}", methods=["GET"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def get_cancellation(req: func.HttpRequest) -> func.HttpResponse:
    app = service.current()
    record = intake.find(app, req.route_params.get("id", ""), caller=caller_of(req, app))
    return _status_response(req, record)


def _status_response(req: func.HttpRequest, record: StatusRecord) -> func.HttpResponse:
    """A request's status, the same answer for a read and for a replayed POST: 200 once final,
    else 202 with where and when to poll."""
    if record.status.final:
        return json_response(200, intake.status_view(record))
    return json_response(
        202,
        intake.status_view(record),
        {"Location": status_url(req.url, record.id), "Retry-After": str(intake.poll_after_seconds(record))},
    )


@bp.route(route="organizers/{organizer}/cancellations", methods=["POST"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def submit_organizer_cancellations(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    app = service.current()
    view, preview = batches.submit(
        app,
        req.route_params.get("organizer", ""),
        req.get_body(),
        caller=caller_of(req, app),
        content_type=req.headers.get("Content-Type"),
        idempotency_key=req.headers.get("Idempotency-Key"),
        traceparent=trace_of(req, context),
    )
    if preview:
        return json_response(200, view)
    return _batch_response(req, view)


@bp.route(route="batches/{id}", methods=["GET"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def get_batch(req: func.HttpRequest) -> func.HttpResponse:
    app = service.current()
    view = batches.batch_view(app, req.route_params.get("id", ""), caller=caller_of(req, app))
    return _batch_response(req, view)


def _batch_response(req: func.HttpRequest, view: dict[str, object]) -> func.HttpResponse:
    if view["done"]:
        return json_response(200, view)
    location = status_url(req.url, str(view["id"]), "batches")
    return json_response(202, view, {"Location": location, "Retry-After": str(intake.POLL_AFTER_SECONDS * 5)})


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness: the process answers. Says nothing of storage or Graph, so a probe never restarts
    a healthy instance because a dependency is down."""
    return json_response(200, {"status": "ok"})


@bp.route(route="health/ready", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def readiness(req: func.HttpRequest) -> func.HttpResponse:
    """Readiness: whether storage and the managed identity answer now (one read, one cached token)."""
    checks = service.readiness()
    ready = all(state == "ok" for state in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return json_response(200, body) if ready else json_response(503, body, {"Retry-After": "10"})
