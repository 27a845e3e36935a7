"""Fixtures for the importer tests: a fresh SQLite store and settings (the shared real datasets
come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsmith.config import EventSettings
from recsmith.store.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "s.sqlite")
    yield s
    s.close()


@pytest.fixture
def settings() -> EventSettings:
    return EventSettings()
