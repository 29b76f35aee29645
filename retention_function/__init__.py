"""Timer adapter: deletes final requests older than ``STATUS_RETENTION_DAYS`` once a day.

Daily at 03:30 UTC (NCRONTAB, six fields; Flex Consumption runs schedules in UTC). The host runs one
invocation at a time across instances (the timer's storage lock) and does not retry a failed run:
the next day's run goes on where this one stopped.
"""

from __future__ import annotations

import logging

import azure.functions as func

from meeting_cancel import retention, service

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)
SCHEDULE = "0 30 3 * * *"


@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE)
def purge_old_requests(timer: func.TimerRequest) -> None:
    app = service.current()
    if timer.past_due:
        log.info("retention run past due: running now")
    retention.purge(app, now=app.clock())  # logs what it deleted
