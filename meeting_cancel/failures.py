"""Why a request failed or waits: one value the lifecycle's moves, the steps and the status view
share, carrying Graph's own answer (status, code, request ids) where Graph answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import GraphAnswer, GraphError


@dataclass(frozen=True)
class Failure:
    """Why a request failed or is being retried, with Graph's own answer where Graph answered."""

    code: str
    message: str
    graph: GraphAnswer | None = None

    @classmethod
    def of(cls, error: GraphError, *, code: str | None = None, message: str | None = None) -> Failure:
        return cls(code=code or error.code, message=message or error.reason, graph=error.answer)

    def fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {"error_code": self.code, "error_message": self.message}
        if self.graph is not None:
            values.update(
                graph_status=self.graph.status,
                graph_code=self.graph.code,
                graph_request_id=self.graph.request_id,
                graph_date=self.graph.date,
                graph_client_request_id=self.graph.client_request_id,
            )
        return values
