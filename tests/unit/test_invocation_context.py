"""The ``context`` the local host passes, as the Python worker does: only to a function that
declares it (through ``functools.wraps``), with the trace context of the host's activity."""

from __future__ import annotations

import functools
from typing import Any

import azure.functions as func
import pytest

from local_runner.index import FunctionIndex, UnsupportedBinding
from local_runner.invocation import arguments, host_traceparent

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_hosts_activity_continues_the_callers_trace_with_a_span_of_its_own() -> None:
    child = host_traceparent(CALLER)
    assert child.split("-")[1] == CALLER.split("-")[1]
    assert child.split("-")[2] != CALLER.split("-")[2]
    assert child.endswith("-01")


def test_without_a_valid_traceparent_the_host_starts_a_trace() -> None:
    for incoming in (None, "", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "garbage"):
        started = host_traceparent(incoming)
        assert len(started) == 55
        assert started.split("-")[1] != "0" * 32


def test_context_is_passed_only_to_a_function_that_declares_it_even_behind_wraps() -> None:
    def plain(req: Any) -> None: ...

    def declares(req: Any, context: func.Context) -> None: ...

    @functools.wraps(declares)
    def wrapped(req: Any, **declared: Any) -> None: ...

    assert set(arguments(plain, "req", 1, function_name="f", invocation_id="i")) == {"req"}
    for call in (declares, wrapped):
        values = arguments(call, "req", 1, function_name="f", invocation_id="i", headers={"TraceParent": CALLER})
        context = values["context"]
        assert isinstance(context, func.Context)
        assert (context.function_name, context.invocation_id) == ("f", "i")
        assert context.trace_context.trace_parent.split("-")[1] == CALLER.split("-")[1]


def test_a_context_parameter_of_another_type_stops_the_host_as_the_worker_refuses_to_load_it() -> None:
    app = func.FunctionApp()

    @app.route(route="typed-wrong")
    def typed_wrong(req: func.HttpRequest, context: int) -> func.HttpResponse:
        return func.HttpResponse()

    with pytest.raises(UnsupportedBinding, match="context parameter"):
        FunctionIndex.discover(app, {})

    fine = func.FunctionApp()

    @fine.route(route="typed-right")
    def typed_right(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse()

    assert [f.name for f in FunctionIndex.discover(fine, {}).http] == ["typed_right"]
