"""Settings for the local host, read as Core Tools reads them: ``local.settings.json`` ``Values``,
then the environment, which wins. Without a ``local.settings.json`` the committed example is the
embedded default, so a fresh clone runs as it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_SETTINGS = PROJECT_ROOT / "local.settings.json"
EXAMPLE_SETTINGS = PROJECT_ROOT / "local.settings.example.json"


def load_values(root: Path = PROJECT_ROOT) -> dict[str, str]:
    values: dict[str, str] = {}
    source = root / LOCAL_SETTINGS.name
    if not source.exists():
        source = root / EXAMPLE_SETTINGS.name
    if source.exists():
        document = json.loads(source.read_text(encoding="utf-8"))
        values.update({k: str(v) for k, v in document.get("Values", {}).items()})
    for name in list(values):
        if name in os.environ:
            values[name] = os.environ[name]
    return values
