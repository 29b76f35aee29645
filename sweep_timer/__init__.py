"""Timer adapter: runs the sweep (``meeting_cancel.sweep``) every minute, and reports the poison
queue's depth for the alert.

The host runs one invocation at a time across all instances and does not retry a failed run; the
next occurrence does ("Timer trigger for Azure Functions": Scale-out, Retry behavior). Schedule
monitoring (``use_monitor``) makes a missed occurrence run at the next start.
"""

from __future__ import annotations

import logging

import azure.functions as func

from meeting_cancel import service, sweep

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)


@bp.timer_trigger(schedule=sweep.SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def sweep_unqueued(timer: func.TimerRequest) -> None:
    current = service.current()
    report = sweep.run(current)
    if report.resent or report.settled or report.left:
        log.info("sweep: %s", report)
    sweep.watch_poison(current)
