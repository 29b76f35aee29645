"""``python -m local_runner``: the service on one machine, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from meeting_cancel.errors import ConfigurationError

from .azurite import DEVELOPMENT_PORTS
from .graph_sandbox import rest_id
from .graph_sandbox.seed import ALL_DAY_SERIES, WEEKLY_SERIES
from .index import UnsupportedBinding
from .keys import KEY_HEADER, KEY_SETTING
from .runner import LocalRunner, StartupError


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(name)s: %(message)s", stream=sys.stdout)
    for noisy in ("azure", "urllib3", "msal", "azure.identity"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    runner = LocalRunner(port=int(os.environ.get("PORT", "7071")))
    if os.environ.get("LOCAL_DATA_DIR"):
        runner.data_dir = Path(os.environ["LOCAL_DATA_DIR"])
    try:
        runner.start()
    except (StartupError, UnsupportedBinding, ConfigurationError) as error:
        print(f"local_runner: {error}", file=sys.stderr, flush=True)
        return 1
    try:
        print(banner(runner), flush=True)
        stop.wait()
    finally:
        print("Stopping the function host, the Graph sandbox and Azurite…", flush=True)
        runner.stop()
    return 0


def banner(runner: LocalRunner) -> str:
    assert runner.http is not None
    api = f"{runner.http.base_url}/api"
    # The curl lines read the key where it is kept, so they work when copied into a script.
    key = f"$(cat {runner.host_key_file})" if runner.host_key_file else f"${KEY_SETTING}"
    lines = ["", "Local function host ready.", f"  HTTP functions   {api}/cancellations, {api}/health"]
    if runner.host_key_file:
        lines.append(
            f"  function key     {runner.http.host_key} (new each start, in {runner.host_key_file}; "
            f"send it as {KEY_HEADER} or ?code=)"
        )
    else:
        lines.append(f"  function key     the value of {KEY_SETTING} (send it as {KEY_HEADER} or ?code=)")
    for listener in runner.listeners:
        lines.append(f"  queue function   {listener.function.name} on '{listener.function.queue_name}'")
    for timer in runner.timers:
        lines.append(f"  timer function   {timer.function.name} on '{timer.function.schedule.expression}' (UTC)")
    storage = runner.values.get("AzureWebJobsStorage", "")
    if runner.azurite or runner.shared_azurite:
        how = "already running, shared" if runner.shared_azurite else f"data in {runner.data_dir / 'azurite'}"
        ports = _ports(runner)
        lines.append(f"  Azurite          development account devstoreaccount1, {ports} ({how})")
        if storage.lower() == "usedevelopmentstorage=true":
            lines.append(f"{'':19}Storage Explorer, az storage and the SDKs reach it as UseDevelopmentStorage=true")
    if runner.sandbox:
        sandbox = runner.sandbox.base_url
        lines += [
            f"  Graph sandbox    {runner.sandbox.graph_base_url} (attendees' notices: {sandbox}/sandbox/outbox)",
            "",
            "Cancel a seeded meeting:",
            f'  curl -i -X POST {api}/cancellations -H "{KEY_HEADER}: {key}" \\',
            "    -H 'Content-Type: application/json' \\",
            '    -d \'{"organizer": "adele.vance@contoso.com", "eventId": "'
            + rest_id("demo/planning")
            + '", "comment": "Planning moves to January."}\'',
            "One occurrence of the seeded series (the 15th was moved to the 16th; the all-day rota: Fridays):",
            f'  -d \'{{"organizer": "adele.vance@contoso.com", "eventId": "{WEEKLY_SERIES}", '
            '"occurrenceDate": "2026-12-15", "timeZone": "W. Europe Standard Time"}\'',
            f'  -d \'{{"organizer": "adele.vance@contoso.com", "eventId": "{ALL_DAY_SERIES}", '
            '"occurrenceDate": "2026-12-11", "timeZone": "Europe/Berlin"}\'',
            "Then poll the Location header it returns, e.g.",
            f'  curl -H "{KEY_HEADER}: {key}" {api}/cancellations/<id>',
            f"and see who was told: curl {sandbox}/sandbox/outbox",
        ]
    else:
        lines.append(f"  Graph            {runner.values.get('GRAPH_BASE_URL')}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def _ports(runner: LocalRunner) -> str:
    blob, queue, table = runner.storage_ports or DEVELOPMENT_PORTS
    return f"blob {blob}, queue {queue}, table {table}"


if __name__ == "__main__":
    raise SystemExit(main())
