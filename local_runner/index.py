"""What the app declares: its functions read from ``app.get_functions()``, as the host indexes them.

A trigger or binding the local host does not implement stops start-up with its name, so nothing the
app relies on is silently not run.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from .ncrontab import Schedule, parse_schedule
from .routing import Route

log = logging.getLogger("local_runner.host")
SUPPORTED_OUTPUTS = {"http"}


class UnsupportedBinding(RuntimeError):
    """The app declares something this local host cannot run."""


@dataclass(frozen=True)
class HttpFunction:
    name: str
    methods: frozenset[str]
    route: Route
    auth_level: str
    argument: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class QueueFunction:
    name: str
    queue_name: str
    connection: str
    argument: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: Schedule
    run_on_startup: bool
    use_monitor: bool | None
    argument: str
    call: Callable[..., Any]


@dataclass
class FunctionIndex:
    http: list[HttpFunction] = field(default_factory=list)
    queues: list[QueueFunction] = field(default_factory=list)
    timers: list[TimerFunction] = field(default_factory=list)

    @classmethod
    def discover(cls, app: func.FunctionApp, settings: Mapping[str, str]) -> FunctionIndex:
        index = cls()
        for function in _functions_of(app):
            name = function.get_function_name()
            trigger = function.get_trigger().get_dict_repr()
            for binding in function.get_bindings():
                spec = binding.get_dict_repr()
                if spec["type"] != trigger["type"] and spec["type"] not in SUPPORTED_OUTPUTS:
                    raise UnsupportedBinding(
                        f"function {name!r}: binding type {spec['type']!r} is not implemented by the local host"
                    )
            call = function.get_user_function()
            _check_context(name, call)
            kind = trigger["type"]
            if kind == "httpTrigger":
                index.http.append(_http_function(name, trigger, call))
            elif kind == "queueTrigger":
                index.queues.append(
                    QueueFunction(
                        name,
                        resolve(trigger["queueName"], settings),
                        trigger.get("connection") or "AzureWebJobsStorage",
                        trigger["name"],
                        call,
                    )
                )
            elif kind == "timerTrigger":
                index.timers.append(_timer_function(name, trigger, settings, call))
            else:
                raise UnsupportedBinding(
                    f"function {name!r}: trigger type {kind!r} is not implemented by the local host"
                )
        return index

    def match(self, method: str, path: str) -> tuple[HttpFunction, dict[str, str]] | frozenset[str] | None:
        """The function and route values for a request path (already percent-decoded as the host
        does); the methods the path takes when only the method is wrong; None when nothing matches."""
        allowed: set[str] = set()
        for function in self.http:
            values = function.route.match(path)
            if values is not None:
                if method in function.methods:
                    return function, values
                allowed |= function.methods
        return frozenset(allowed) if allowed else None


def _check_context(name: str, call: Callable[..., Any]) -> None:
    """A ``context`` parameter must be typed ``azure.functions.Context`` (or not at all), or the
    worker refuses to load the function (azure-functions-python-worker ``is_context_required``)."""
    if "context" not in inspect.signature(call).parameters:
        return
    hint = typing.get_type_hints(call).get("context")
    if hint is not None and not (isinstance(hint, type) and hint.__name__ == "Context"):
        raise UnsupportedBinding(f"function {name!r}: the context parameter must be azure.functions.Context")


def _http_function(name: str, trigger: Mapping[str, Any], call: Callable[..., Any]) -> HttpFunction:
    route = trigger.get("route") or name
    methods = frozenset(str(getattr(m, "value", m)).upper() for m in (trigger.get("methods") or ["GET", "POST"]))
    auth = str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel") or "function")).lower()
    return HttpFunction(name, methods, Route.parse(route), auth, trigger["name"], call)


def _timer_function(
    name: str, trigger: Mapping[str, Any], settings: Mapping[str, str], call: Callable[..., Any]
) -> TimerFunction:
    expression = resolve(str(trigger["schedule"]), settings)
    try:
        schedule = parse_schedule(expression)
    except ValueError as error:
        raise UnsupportedBinding(f"function {name!r}: schedule {expression!r}: {error}") from None
    return TimerFunction(
        name,
        schedule,
        bool(trigger.get("runOnStartup")),
        trigger.get("useMonitor"),
        trigger["name"],
        call,
    )


# Keyed by id() and holding the app itself, so that a collected app's id is never reused for another.
_indexed: dict[int, tuple[func.FunctionApp, list[Any]]] = {}


def _functions_of(app: func.FunctionApp) -> list[Any]:
    """The app's functions; the SDK indexes an app only once per process, as the host does."""
    if id(app) not in _indexed:
        _indexed[id(app)] = (app, list(app.get_functions()))
    return _indexed[id(app)][1]


def resolve(value: str, settings: Mapping[str, str]) -> str:
    """Replaces %SETTING% binding expressions, failing with the setting's name when it is unset."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise UnsupportedBinding(f"binding expression %{name}% names a setting that is not set")
        return settings[name]

    return re.sub(r"%([^%]+)%", lookup, value)


def invocation_log(name: str, started: float, invocation_id: str, error: BaseException | None) -> None:
    duration = (time.perf_counter() - started) * 1000
    if error is None:
        log.info("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)", name, invocation_id, duration)
    else:
        log.error(
            "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms): %s: %s",
            name,
            invocation_id,
            duration,
            type(error).__name__,
            error,
        )
