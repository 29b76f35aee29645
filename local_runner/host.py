"""The local function host: serves what ``function_app.app`` declares, with the host's semantics.

One module per trigger: ``http_host`` (routes, function keys, body limit), ``queue_host`` (batches,
visibility, poison), ``timer_host`` (NCRONTAB schedules); ``index`` reads the app's functions and
stops start-up on a trigger or binding it does not implement. The names below stay importable here.
"""

from __future__ import annotations

from .http_host import HttpHost
from .index import FunctionIndex, HttpFunction, QueueFunction, TimerFunction, UnsupportedBinding, resolve
from .queue_host import QueueListener
from .timer_host import TimerListener

__all__ = [
    "FunctionIndex",
    "HttpFunction",
    "HttpHost",
    "QueueFunction",
    "QueueListener",
    "TimerFunction",
    "TimerListener",
    "UnsupportedBinding",
    "resolve",
]
