"""Fixtures for every tier: settings restored after every test (as functions-framework's tests do)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from meeting_cancel import service

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    service.reset()
    yield
    os.environ.clear()
    os.environ.update(saved)
    service.reset()


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT
