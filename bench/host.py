"""One local function host for the benchmark, in a process of its own so that the CPU it uses is
measured apart from Azurite, the Graph sandbox and the benchmark's clients (``python -m bench.host``).

It serves the real app against the storage and Graph named in its environment and reads
``BENCH_HOST_JSON`` (host.json's queue settings) when set. Logging is at WARNING: in Azure the
Functions host, not the Python process, writes the invocation log, and the bench measures the
Python process. It prints ``ready
<base url> <key>`` once serving and stops when its standard input closes."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from local_runner.runner import LocalRunner

from .harness import ROOT


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    runner = LocalRunner(
        port=0,
        values=dict(os.environ),
        data_dir=Path(os.environ["LOCAL_DATA_DIR"]),
        host_json=Path(os.environ.get("BENCH_HOST_JSON") or ROOT / "host.json"),
    )
    profile = None
    if os.environ.get("BENCH_PROFILE"):  # where time goes, for development: python -m pstats FILE
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    runner.start()
    if os.environ.get("BENCH_NO_WORKER"):  # intake alone
        for listener in runner.listeners:
            listener.stop()
        runner.listeners = []
    assert runner.http is not None
    print(f"ready {runner.http.base_url} {runner.http.host_key}", flush=True)
    try:
        sys.stdin.read()
    finally:
        runner.stop()
        if profile is not None:
            profile.disable()
            profile.dump_stats(os.environ["BENCH_PROFILE"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
