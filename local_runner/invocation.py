"""What a function receives besides its trigger: the ``context`` parameter the Python worker passes
to a function that declares one, with the invocation's id and the W3C trace context of the host's
own activity for it (azure-functions-python-worker ``functions.py`` ``is_context_required``: a
parameter named ``context`` that is not a binding, annotated, if at all, with a class named
``Context``; ``bindings/tracecontext.py``: ``trace_parent``, ``trace_state``, ``attributes``).

The host's activity continues the caller's ``traceparent`` when the request sends a valid one (the
same trace, a new span) and starts a trace otherwise, as ASP.NET Core does for the Functions host.
"""

from __future__ import annotations

import functools
import inspect
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from meeting_cancel.models import TRACEPARENT


@dataclass(frozen=True)
class TraceContext:
    trace_parent: str
    trace_state: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


class InvocationContext(func.Context):
    def __init__(self, function_name: str, invocation_id: str, trace_parent: str) -> None:
        self._function_name = function_name
        self._invocation_id = invocation_id
        self._trace_context = TraceContext(trace_parent)
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> Any:
        return self._trace_context

    @property
    def retry_context(self) -> Any:
        return None


@functools.cache
def _declares_context(call: Callable[..., Any]) -> bool:
    """Read once per function, not on every invocation."""
    return "context" in inspect.signature(call).parameters


def host_traceparent(incoming: str | None) -> str:
    """The host activity's traceparent: a child of the caller's when it is valid, else a new trace."""
    value = (incoming or "").strip().lower()
    _, trace_id, _, flags = value.split("-") if TRACEPARENT.fullmatch(value) else ("", secrets.token_hex(16), "", "01")
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def arguments(
    call: Callable[..., Any],
    argument: str,
    trigger: Any,
    *,
    function_name: str,
    invocation_id: str,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of one invocation: the trigger, and ``context`` when the function
    declares it (the worker's signature check follows ``functools.wraps``, so does this)."""
    values: dict[str, Any] = {argument: trigger}
    if _declares_context(call):
        incoming = next((v for k, v in (headers or {}).items() if k.lower() == "traceparent"), None)
        values["context"] = InvocationContext(function_name, invocation_id, host_traceparent(incoming))
    return values
