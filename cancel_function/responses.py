"""Building HTTP responses: JSON bodies, problems, and the absolute status URL."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit

import azure.functions as func

from meeting_cancel.problems import PROBLEM_CONTENT_TYPE, Problem


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=headers or {}, mimetype="application/json", charset="utf-8"
    )


def problem_response(problem: Problem) -> func.HttpResponse:
    return func.HttpResponse(
        problem.to_json(),
        status_code=problem.status,
        headers=problem.headers(),
        mimetype=PROBLEM_CONTENT_TYPE,
        charset="utf-8",
    )


def status_url(request_url: str, request_id: str, collection: str = "cancellations") -> str:
    """A resource's absolute URL under /api; the query (which may hold a function key) is dropped."""
    parts = urlsplit(request_url)
    path = parts.path
    prefix = path[: path.index("/", 1)] if path.count("/") > 1 else "/api"
    return f"{parts.scheme}://{parts.netloc}{prefix}/{collection}/{quote(request_id, safe='')}"
