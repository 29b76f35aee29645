"""HTTP adapter for an operator's controls: abort, retry, and the list of requests.

Authorization is that of status reads (``callers.authorize_read``): the submitter, a function key,
or the app role ``Cancellations.Read.All``; the list shows other callers only their own requests.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import azure.functions as func

from meeting_cancel import batches, intake, listing, operations, service
from meeting_cancel.parsing import parse_json
from meeting_cancel.problems import Problem

from . import CALLER_AUTH_LEVEL, answers_problems, caller_of, trace_of
from .responses import json_response

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.route(route="cancellations/{id}/abort", methods=["POST"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def abort_cancellation(req: func.HttpRequest) -> func.HttpResponse:
    app = service.current()
    record = operations.abort(app, req.route_params.get("id", ""), caller=caller_of(req, app))
    return json_response(200, intake.status_view(record))


@bp.route(route="batches/{id}/abort", methods=["POST"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def abort_batch(req: func.HttpRequest) -> func.HttpResponse:
    app = service.current()
    caller = caller_of(req, app)
    batch_id = req.route_params.get("id", "")
    operations.abort_batch(app, batch_id, caller=caller)
    return json_response(200, batches.batch_view(app, batch_id, caller=caller))


@bp.route(route="cancellations/{id}/retry", methods=["POST"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def retry_cancellation(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    app = service.current()
    record = operations.retry(
        app,
        req.route_params.get("id", ""),
        _optional_body(req),
        caller=caller_of(req, app),
        traceparent=trace_of(req, context),
    )
    location = req.url.split("?")[0].rsplit("/", 1)[0]
    return json_response(202, intake.status_view(record), {"Location": location, "Retry-After": "2"})


@bp.route(route="cancellations", methods=["GET"], auth_level=CALLER_AUTH_LEVEL)
@answers_problems
def list_cancellations(req: func.HttpRequest) -> func.HttpResponse:
    app = service.current()
    caller = caller_of(req, app)
    params = dict(parse_qsl(urlsplit(req.url).query, keep_blank_values=True))  # `to=` is a bad `to`, not none
    query = listing.parse_query(params, now=app.clock(), retention_days=app.settings.status_retention_days)
    page = listing.list_requests(app, query, caller=caller)
    body: dict[str, Any] = {"value": [intake.status_view(record) for record in page.records]}
    if page.skip_token is not None:
        body["nextLink"] = next_link(req.url, params, page.skip_token)
    return json_response(200, body)


def next_link(url: str, params: dict[str, str], token: str) -> str:
    """The same query with the next page's token; a function key in ``code`` is never echoed."""
    kept = {k: v for k, v in params.items() if k not in ("code", listing.SKIP_TOKEN)}
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode({**kept, listing.SKIP_TOKEN: token}), ""))


def _optional_body(req: func.HttpRequest) -> dict[str, Any]:
    raw = req.get_body()
    if not raw.strip():
        return {}
    document = parse_json(raw, content_type=req.headers.get("Content-Type"))  # 413, 415 or 400 when unreadable
    if not isinstance(document, dict):
        raise Problem(
            400, "invalidRequest", "Invalid body", 'Send no body, or a JSON object such as {"comment": "..."}.'
        )
    return document
