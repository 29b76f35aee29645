"""Timer triggers through the local host, with tiny fixture apps (functions-framework's style): the
schedule from the decorator, run_on_startup, past_due after a missed occurrence, one run at a time,
and a failing run that does not stop the schedule."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from local_runner.host import FunctionIndex, TimerListener, UnsupportedBinding


class Runs:
    def __init__(self) -> None:
        self.requests: list[TimerRequest] = []
        self.active = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def wait_for(self, count: int, timeout: float = 20) -> list[TimerRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.requests) >= count, f"{len(self.requests)} runs, expected {count}"
        return self.requests


def timer_app(
    runs: Runs,
    schedule: str,
    *,
    seconds: float = 0.0,
    fail: bool = False,
    run_on_startup: bool | None = None,
    use_monitor: bool | None = None,
) -> FunctionIndex:
    app = func.FunctionApp()

    @app.timer_trigger(schedule=schedule, arg_name="timer", run_on_startup=run_on_startup, use_monitor=use_monitor)
    def tick(timer: func.TimerRequest) -> None:
        with runs.lock:
            runs.active += 1
            runs.most_at_once = max(runs.most_at_once, runs.active)
        time.sleep(seconds)
        with runs.lock:
            runs.active -= 1
            runs.requests.append(cast(TimerRequest, timer))
        if fail:
            raise RuntimeError("this run fails")

    return FunctionIndex.discover(app, {})


@pytest.fixture
def started() -> Iterator[Callable[..., TimerListener]]:
    listeners: list[TimerListener] = []

    def start(index: FunctionIndex, status_dir: Path | None = None) -> TimerListener:
        [function] = index.timers
        listener = TimerListener(function, status_dir=status_dir).start()
        listeners.append(listener)
        return listener

    yield start
    for listener in listeners:
        listener.stop()


def test_a_schedule_from_the_decorator_runs_with_a_timer_request(started: Callable[..., TimerListener]) -> None:
    runs = Runs()
    index = timer_app(runs, "* * * * * *")
    assert index.timers[0].schedule.expression == "* * * * * *"
    started(index)
    first, second = runs.wait_for(2)[:2]
    assert isinstance(first, func.TimerRequest)
    assert (first.past_due, second.past_due) == (False, False)
    assert second.schedule_status["Last"] > first.schedule_status.get("Last", "")


def test_runs_never_overlap_and_a_slow_run_skips_occurrences(started: Callable[..., TimerListener]) -> None:
    runs = Runs()
    started(timer_app(runs, "* * * * * *", seconds=1.5))
    runs.wait_for(3)
    assert runs.most_at_once == 1


def test_a_failing_run_is_logged_and_the_schedule_goes_on(
    started: Callable[..., TimerListener], caplog: pytest.LogCaptureFixture
) -> None:
    runs = Runs()
    started(timer_app(runs, "* * * * * *", fail=True))
    runs.wait_for(2)
    assert "Executed 'Functions.tick' (Failed" in caplog.text
    assert "this run fails" in caplog.text


def test_run_on_startup_runs_once_at_once(started: Callable[..., TimerListener]) -> None:
    runs = Runs()
    started(timer_app(runs, "0 0 0 1 1 *", run_on_startup=True))  # otherwise once a year
    [only] = runs.wait_for(1)
    assert only.past_due is False
    time.sleep(0.5)
    assert len(runs.requests) == 1


def test_a_missed_occurrence_runs_at_start_with_past_due(started: Callable[..., TimerListener], tmp_path: Path) -> None:
    missed = datetime.now(UTC) - timedelta(hours=1)
    (tmp_path / "tick.json").write_text(
        json.dumps({"Last": (missed - timedelta(days=1)).isoformat(), "Next": missed.isoformat(), "LastUpdated": ""})
    )
    runs = Runs()
    started(timer_app(runs, "0 0 3 * * *", use_monitor=True), status_dir=tmp_path)
    [late] = runs.wait_for(1)
    assert late.past_due is True
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = json.loads((tmp_path / "tick.json").read_text())
        if datetime.fromisoformat(status["Next"]) > datetime.now(UTC):
            break
        time.sleep(0.05)
    assert datetime.fromisoformat(status["Next"]).time().hour == 3


def test_without_monitoring_nothing_is_past_due(started: Callable[..., TimerListener], tmp_path: Path) -> None:
    missed = datetime.now(UTC) - timedelta(hours=1)
    (tmp_path / "tick.json").write_text(json.dumps({"Next": missed.isoformat()}))
    runs = Runs()
    started(timer_app(runs, "0 0 3 * * *", use_monitor=False, run_on_startup=True), status_dir=tmp_path)
    [first] = runs.wait_for(1)
    assert first.past_due is False


def test_an_invalid_schedule_stops_start_up_naming_the_function_and_field() -> None:
    with pytest.raises(UnsupportedBinding, match=r"'tick'.*hour value 25 is outside 0-23"):
        timer_app(Runs(), "0 0 25 * * *")
