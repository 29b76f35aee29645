"""ARCHITECTURE.md stays true: every module of the app, the local runner and the benchmark is in its
module map (the lifecycle drawing is checked in test_lifecycle.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("meeting_cancel", "cancel_function", "queue_trigger", "sweep_timer", "local_runner", "bench")


def test_every_module_is_in_the_module_map() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for package in PACKAGES:
        for module in sorted((ROOT / package).rglob("*.py")):
            relative = module.relative_to(ROOT / package).as_posix()
            if (
                module.name == "__init__.py"
                and module.parent == ROOT / package
                and package
                not in (
                    "cancel_function",
                    "queue_trigger",
                    "sweep_timer",
                )
            ):
                continue  # a package's own __init__ holds no code worth a line
            if f"`{relative}`" not in text and f"`{package}/{relative}`" not in text:
                missing.append(f"{package}/{relative}")
    assert (ROOT / "function_app.py").exists()
    assert "`function_app.py`" in text
    assert not missing, f"add a line for each to ARCHITECTURE.md's module map: {missing}"
