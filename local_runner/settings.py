"""Settings for the local host, read as Core Tools reads them: every environment variable is a
setting, and ``local.settings.json`` ``Values`` fill in only what the environment does not define
(Azure/azure-functions-core-tools ``src/Azure.Functions.Cli/Actions/HostActions/StartHostAction.cs``,
``UpdateEnvironmentVariables``: a local setting is skipped when the environment variable is set
and not empty). Without a ``local.settings.json`` the committed example is the embedded default,
so a fresh clone runs as it is."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_SETTINGS = PROJECT_ROOT / "local.settings.json"
EXAMPLE_SETTINGS = PROJECT_ROOT / "local.settings.example.json"


def file_values(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``Values`` of local.settings.json, else of the committed example."""
    source = root / LOCAL_SETTINGS.name
    if not source.exists():
        source = root / EXAMPLE_SETTINGS.name
    if not source.exists():
        return {}
    document = json.loads(source.read_text(encoding="utf-8"))
    return {k: str(v) for k, v in document.get("Values", {}).items()}


def load_values(root: Path = PROJECT_ROOT, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environment = dict(os.environ if environ is None else environ)
    values = dict(environment)
    for name, value in file_values(root).items():
        if not environment.get(name):
            values[name] = value
    return values
