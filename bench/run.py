"""`make bench` (``python -m bench``): what users feel, measured in one run on this machine,
printed as one table.

Everything runs here: Azurite, the local function host serving the real app, and the Graph sandbox
with realistic latency. Figures are ratios against a baseline measured in the same run wherever
one exists, because absolute times vary from machine to machine. ``harness`` builds the stack,
``phases`` measures it running, ``static`` measures what needs no stack.
"""

from __future__ import annotations

import os
import platform
import re
import tempfile
import time
from pathlib import Path

from .harness import GRAPH_LATENCY, Bench, Row
from .phases import end_to_end, intake, worker
from .static import cold_start, package_size


def main() -> int:
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        bench = Bench(Path(work))
        try:
            intake(bench, rows)
            end_to_end(bench, rows)
            worker(bench, rows)
        finally:
            bench.stop()
    cold_start(rows)
    package_size(rows)
    width = max(len(r.what) for r in rows)
    fig = max(len(r.figure) for r in rows)
    cpu = re.sub(
        r"\s+",
        " ",
        next(
            (
                line.split(":", 1)[1]
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        ),
    ).strip()
    print(
        f"\nmeeting-cancel benchmark - {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"Graph latency {GRAPH_LATENCY[0] * 1000:.0f}-{GRAPH_LATENCY[1] * 1000:.0f} ms, 4 concurrent per mailbox\n"
    )
    print(f"| {'measure'.ljust(width)} | {'figure'.ljust(fig)} | target | result |")
    print(f"|{'-' * (width + 2)}|{'-' * (fig + 2)}|--------|--------|")
    for row in rows:
        verdict = "" if row.passed is None else ("pass" if row.passed else "FAIL")
        print(f"| {row.what.ljust(width)} | {row.figure.ljust(fig)} | {row.target} | {verdict} |")
    print(f"\n(ran in {time.perf_counter() - started:.0f} s)")
    return 0
