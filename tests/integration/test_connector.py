"""The Power Automate custom connector against the running service: schemathesis generates requests
from the connector's swagger and checks every answer of the local host against it. The offline
checks of the connector files live in tests/unit/test_connector_files.py.

The run keeps its state out of the working tree: schemathesis writes a crash cache under
``.schemathesis/`` and Hypothesis an example database under ``.hypothesis/`` in the directory it runs
from, so it runs from a temporary directory with a ``schemathesis.toml`` that puts the cache there
(``[cache] directory``, schemathesis 4.x ``config/_cache.py``) and keeps no example database.

Every check runs (``--checks all``), the stateful phase too. Rules Swagger 2.0 cannot state are kept
by ``schemathesis_hooks.py`` for cases generated as valid; the one configured exception is 422 on
the two POSTs, an answer to state rather than to a body (an Idempotency-Key reused with another
body, which the IETF draft answers with 422: ietf-wg-httpapi/idempotency,
draft-ietf-httpapi-idempotency-key-header.md, "Error Scenarios"; or a window over the batch limit)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from local_runner.runner import LocalRunner

ROOT = Path(__file__).resolve().parents[2]
SWAGGER = ROOT / "connector" / "apiDefinition.swagger.json"
GENERATED_STATE = (".schemathesis", "schemathesis-report")
HOOKS = "tests.integration.schemathesis_hooks"
STATEFUL_ANSWERS = """
[[operations]]
include-name = ["POST /cancellations", "POST /organizers/{organizer}/cancellations"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
"""


def untracked_state() -> dict[str, tuple[int, int]]:
    """Every file schemathesis could leave in the working tree, with its size and modification time."""
    files: dict[str, tuple[int, int]] = {}
    for name in GENERATED_STATE:
        for path in (ROOT / name).rglob("*"):
            if path.is_file():
                stat = path.stat()
                files[str(path.relative_to(ROOT))] = (stat.st_size, stat.st_mtime_ns)
    return files


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def response_statuses(ndjson_report: Path) -> list[int]:
    """The HTTP status of every response schemathesis recorded in its NDJSON event stream."""
    statuses: list[int] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            status = node.get("status_code")
            if isinstance(status, int) and "elapsed" in node:
                statuses.append(status)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    for line in ndjson_report.read_text().splitlines():
        collect(json.loads(line))
    return statuses


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_schemathesis_with_every_check_finds_nothing(tmp_path: Path) -> None:
    from .conftest import ORGANIZER  # noqa: F401 - documents the seeded organizers the examples hit

    assert not git("ls-files", "--", *GENERATED_STATE), "generated schemathesis state must not be tracked"
    before = untracked_state()
    workdir = tmp_path / "schemathesis"
    workdir.mkdir()
    config = workdir / "schemathesis.toml"
    config.write_text(
        f'[cache]\ndirectory = "{workdir / "cache"}"\n\n[generation]\ndatabase = "none"\n' + STATEFUL_ANSWERS
    )
    report = workdir / "events.ndjson"
    key = secrets.token_urlsafe(24)

    # Its own Azurite on free ports, not the development ports 10000-10002 a developer's make run may hold.
    runner = LocalRunner(port=0, data_dir=tmp_path / "runner", storage_ports=(0, 0, 0))
    runner.values["LOCAL_HOST_KEY"] = key  # the local host enforces function keys as Azure does
    runner.start()
    try:
        assert runner.http is not None
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "st"),
                "--config-file",
                str(config),
                "run",
                str(SWAGGER),
                "--url",
                f"{runner.http.base_url}/api",
                "--header",
                f"x-functions-key: {key}",
                "--generation-with-security-parameters",
                "false",
                "--max-examples",
                "30",
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--seed",
                "1",
                "--no-color",
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(report),
            ],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": HOOKS},
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
    finally:
        runner.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

    statuses = response_statuses(report)
    assert statuses, "schemathesis recorded no responses"
    assert {200, 202} & set(statuses), f"no request was served: {sorted(set(statuses))}"
    assert untracked_state() == before, "schemathesis wrote into the working tree"
    assert not git("status", "--porcelain", "--", *GENERATED_STATE)
