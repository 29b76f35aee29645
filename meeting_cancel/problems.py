"""HTTP problems (RFC 9457) that the domain raises and the adapters render.

Each problem carries a stable ``code`` for programs and a ``detail`` telling a person what to fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass
class Problem(Exception):
    status: int
    code: str
    title: str
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)
    retry_after: int | None = None

    def body(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "type": f"urn:meeting-cancel:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            document["errors"] = self.errors
        return document

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}

    def to_json(self) -> str:
        return json.dumps(self.body())


def storage_unavailable(retry_after: int = 10) -> Problem:
    return Problem(
        503,
        "storageUnavailable",
        "Storage unavailable",
        "The service could not reach its storage; nothing was queued. Try again later.",
        retry_after=retry_after,
    )
