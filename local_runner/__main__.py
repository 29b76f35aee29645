"""``python -m local_runner``: the service on one machine, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .graph_sandbox import rest_id
from .runner import LocalRunner


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
    runner.start()
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
    lines = ["", "Local function host ready.", f"  HTTP functions   {api}/cancellations, {api}/health"]
    for listener in runner.listeners:
        lines.append(f"  queue function   {listener.function.name} on '{listener.function.queue_name}'")
    if runner.azurite:
        lines.append(
            f"  Azurite          queue {runner.azurite.queue_port}, table {runner.azurite.table_port}, "
            f"data in {runner.azurite.data_dir}"
        )
    if runner.sandbox:
        sandbox = runner.sandbox.base_url
        lines += [
            f"  Graph sandbox    {runner.sandbox.graph_base_url} (attendees' notices: {sandbox}/sandbox/outbox)",
            "",
            "Cancel a seeded meeting:",
            f"  curl -i -X POST {api}/cancellations -H 'Content-Type: application/json' \\",
            '    -d \'{"organizer": "adele.vance@contoso.com", "eventId": "'
            + rest_id("demo/planning")
            + '", "comment": "Planning moves to January."}\'',
            "Then poll the Location header it returns, e.g.",
            f"  curl {api}/cancellations/<id>",
            f"and see who was told: curl {sandbox}/sandbox/outbox",
        ]
    else:
        lines.append(f"  Graph            {runner.values.get('GRAPH_BASE_URL')}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
