"""Timer triggers with the host's semantics (Azure/azure-webjobs-sdk-extensions
``Timers/Listener/TimerListener.cs``):

- one invocation at a time per function; the next occurrence is computed after an invocation ends,
  so a slow run skips occurrences instead of piling them up;
- ``run_on_startup`` runs it once at start;
- with schedule monitoring (``use_monitor``; by default on for schedules a minute or more apart)
  the status (Last, Next, LastUpdated) is kept, here in ``<data dir>/timers/<function>.json``; when
  a start finds that the recorded Next has passed, it runs at once with ``past_due`` true;
- the function receives ``azure.functions.TimerRequest`` with ``past_due``, ``schedule_status``
  and ``schedule``, as the Python worker builds it;
- an exception is logged and the schedule goes on.

Schedules are evaluated in UTC, the Azure default (WEBSITE_TIME_ZONE is not applied locally).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.functions.timer import TimerRequest

from .index import TimerFunction, invocation_log
from .invocation import arguments

log = logging.getLogger("local_runner.host")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class TimerListener:
    def __init__(self, function: TimerFunction, *, status_dir: Path | None = None, clock: Clock = utc_now) -> None:
        self.function = function
        self.clock = clock
        interval = function.schedule.shortest_interval(clock())
        monitored = function.use_monitor
        if monitored is None:
            monitored = interval is not None and interval >= timedelta(minutes=1)
        self.status_file = status_dir / f"{function.name}.json" if (monitored and status_dir) else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status: dict[str, str] = {}

    def start(self) -> TimerListener:
        self._thread = threading.Thread(target=self._run, name=f"timer-{self.function.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        now = self.clock()
        recorded = self._read_status()
        log.info(
            "The next occurrences of 'Functions.%s' (schedule %r, UTC) start at %s",
            self.function.name,
            self.function.schedule.expression,
            self._next(now),
        )
        recorded_next = _parse(recorded.get("Next")) if recorded else None
        if recorded_next is not None and recorded_next <= now:
            log.info("Function 'Functions.%s' is past due", self.function.name)
            self._invoke(past_due=True, reason="IsPastDue")
        elif self.function.run_on_startup:
            self._invoke(past_due=False, reason="RunOnStartup")
        while not self._stop.is_set():
            due = self._next(self.clock())
            if due is None:
                log.warning("the schedule of 'Functions.%s' has no future occurrence", self.function.name)
                return
            self._record(last=_parse(self.status.get("Last")), upcoming=due)
            while not self._stop.is_set():
                remaining = (due - self.clock()).total_seconds()
                if remaining <= 0:
                    break
                self._stop.wait(min(remaining, 1.0))
            if self._stop.is_set():
                return
            self._invoke(past_due=False, reason="Timer")

    def _next(self, after: datetime) -> datetime | None:
        return self.function.schedule.next_after(after)

    def _invoke(self, *, past_due: bool, reason: str) -> None:
        invoked_at = self.clock()
        request = TimerRequest(past_due=past_due, schedule_status=dict(self.status), schedule={"AdjustForDST": True})
        invocation_id = str(uuid.uuid4())
        log.info(
            "Executing 'Functions.%s' (Reason='%s', Id=%s)",
            self.function.name,
            "Timer fired at " + invoked_at.isoformat() if reason == "Timer" else reason,
            invocation_id,
        )
        started = time.perf_counter()
        try:
            f = self.function
            f.call(**arguments(f.call, f.argument, request, function_name=f.name, invocation_id=invocation_id))
        except Exception as error:  # the host logs it and keeps the schedule
            invocation_log(self.function.name, started, invocation_id, error)
        else:
            invocation_log(self.function.name, started, invocation_id, None)
        self._record(last=invoked_at, upcoming=self._next(max(invoked_at, self.clock())))

    def _record(self, *, last: datetime | None, upcoming: datetime | None) -> None:
        now = self.clock()
        self.status = {
            "Last": (last or datetime.min.replace(tzinfo=UTC)).isoformat(),
            "Next": upcoming.isoformat() if upcoming else "",
            "LastUpdated": now.isoformat(),
        }
        if self.status_file is not None:
            self.status_file.parent.mkdir(parents=True, exist_ok=True)
            # Written whole or not at all (a rename), as the host's schedule monitor keeps its status:
            # a reader, or a start after a kill mid-write, never finds the file half written.
            partial = self.status_file.with_suffix(".partial")
            partial.write_text(json.dumps(self.status), encoding="utf-8")
            os.replace(partial, self.status_file)

    def _read_status(self) -> dict[str, str] | None:
        if self.status_file is None:
            return None
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            document = json.loads(self.status_file.read_text(encoding="utf-8"))
            if isinstance(document, dict):
                self.status = {str(k): str(v) for k, v in document.items()}
                return self.status
        return None


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
