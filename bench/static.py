"""Figures measured without the running stack: import time of the app and installed size."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import ROOT, Row


def cold_start(rows: list[Row]) -> None:
    env = {**os.environ, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import function_app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stderr.splitlines() if line.rstrip().endswith("| function_app"))
    cumulative = int(line.split("|")[1]) / 1e6
    rows.append(Row("import of function_app (-X importtime)", f"{cumulative:.2f} s", "≤ 0.4 s", cumulative <= 0.4))
    deferred = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time, function_app; t = time.perf_counter(); "
            "import meeting_cancel.graph, meeting_cancel.status_store, meeting_cancel.work_queue, azure.identity; "
            "print(time.perf_counter() - t)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows.append(Row("… SDK imports deferred to the first invocation", f"{float(deferred.stdout):.2f} s"))


def installed_size(requirements: list[str]) -> float:
    with tempfile.TemporaryDirectory() as target:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--target",
                target,
                *requirements,
            ],
            check=True,
            capture_output=True,
        )
        return sum(p.stat().st_size for p in Path(target).rglob("*") if p.is_file()) / 1e6


def package_size(rows: list[Row]) -> None:
    pinned = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    size = installed_size(pinned)
    rows.append(Row("runtime packages installed (requirements.txt)", f"{size:.1f} MB", "≤ 50 MB", size <= 50))
    with_sdk = installed_size([*pinned, "msgraph-sdk"])
    rows.append(Row("… if msgraph-sdk were added", f"{with_sdk:.1f} MB (+{with_sdk - size:.1f} MB)"))
