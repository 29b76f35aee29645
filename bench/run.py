"""`make bench` (``python -m bench``): what users feel and what each cancellation costs, measured in
one run on this machine, printed as one table with each target and PASS or FAIL.

Everything runs here: Azurite behind counting proxies, the Graph sandbox with Graph's latency and its
4-concurrent-requests-per-mailbox limit, and the real app in local function hosts, each in a process
of its own so that the CPU each uses is measured apart. Figures are ratios against a baseline
measured in the same run wherever one exists, because absolute times vary from machine to machine.
``harness`` builds the stack, ``phases`` measures it running, ``minimums`` states the storage
operations each path needs, ``static`` measures what needs no stack.

``python -m bench --phases intake,paths`` runs some phases; ``--host-json FILE`` measures another
host.json's queue settings (how the batch settings in README were chosen).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .harness import REALISTIC_LATENCY, SHORT_LATENCY, Bench, Row
from .phases import end_to_end, intake, many_mailboxes, one_mailbox
from .static import cold_start, package_size
from .storage_phases import offboarding, storage_per_path

MS = f"{REALISTIC_LATENCY[0] * 1000:.0f}–{REALISTIC_LATENCY[1] * 1000:.0f} ms"
SHORT = f"{SHORT_LATENCY[0] * 1000:.0f}–{SHORT_LATENCY[1] * 1000:.0f} ms"


def phases(host_json: Path | None) -> dict[str, Callable[[Bench, list[Row]], None]]:
    return {
        "intake": intake,
        "one": lambda b, r: one_mailbox(
            b,
            r,
            hosts=1,
            latency=REALISTIC_LATENCY,
            target=0.95,
            host_json=host_json,
            label=f"worker, one mailbox, Graph {MS}: share of the 4-concurrent ceiling",
        ),
        "two": lambda b, r: one_mailbox(
            b,
            r,
            hosts=2,
            latency=REALISTIC_LATENCY,
            target=0.90,
            host_json=host_json,
            label=f"the same with two local hosts on one queue, Graph {MS}",
        ),
        "short": lambda b, r: one_mailbox(
            b,
            r,
            hosts=1,
            latency=SHORT_LATENCY,
            target=None,
            host_json=host_json,
            n=300,
            label=f"worker, one mailbox, Graph {SHORT} (CPU-bound figure for a {os.cpu_count()}-core machine)",
        ),
        "many": lambda b, r: many_mailboxes(b, r, host_json=host_json),
        "paths": lambda b, r: storage_per_path(b, r, host_json=host_json),
        "offboarding": lambda b, r: offboarding(b, r, host_json=host_json),
        "e2e": end_to_end,
    }


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1]
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    model = re.sub(r"\s+", " ", cpu).strip()
    return f"{os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--phases", help="comma-separated: intake,one,two,short,many,paths,offboarding,e2e,static")
    parser.add_argument("--host-json", type=Path, help="another host.json to measure")
    args = parser.parse_args(argv)
    available = phases(args.host_json)
    chosen = args.phases.split(",") if args.phases else [*available, "static"]
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        bench = Bench(Path(work))
        try:
            for name in chosen:
                if name in available:
                    available[name](bench, rows)
        finally:
            bench.stop()
    if "static" in chosen:
        cold_start(rows)
        package_size(rows)
    width = max(len(r.what) for r in rows)
    fig = max(len(r.figure) for r in rows)
    tgt = max([len(r.target) for r in rows] + [6])
    print(f"\nmeeting-cancel benchmark - {machine()}")
    if args.host_json:
        print(f"host.json: {args.host_json}")
    print(f"\n| {'measure'.ljust(width)} | {'figure'.ljust(fig)} | {'target'.ljust(tgt)} | result |")
    print(f"|{'-' * (width + 2)}|{'-' * (fig + 2)}|{'-' * (tgt + 2)}|--------|")
    for row in rows:
        verdict = "" if row.passed is None else ("PASS" if row.passed else "FAIL")
        print(f"| {row.what.ljust(width)} | {row.figure.ljust(fig)} | {row.target.ljust(tgt)} | {verdict.ljust(6)} |")
    print(f"\n(ran in {time.perf_counter() - started:.0f} s)")
    return 0
