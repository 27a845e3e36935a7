"""Fixtures for the importer tests: a fresh SQLite store and settings (the shared real datasets
come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recsmith.config import EventSettings
from recsmith.store.base import EventStore
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.backends import BACKENDS, open_backend

#: the generic importer's columns, as the CSV files these tests write name them
EVENTS_HEADER = "event_id,user_id,item_id,event_type,value,timestamp,context"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "s.sqlite")
    yield s
    s.close()


@pytest.fixture
def settings() -> EventSettings:
    return EventSettings()


@pytest.fixture(params=BACKENDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """A fresh store of each backend, for what SQLite and PostgreSQL must do alike."""
    with open_backend(request.param, tmp_path) as (opened, _):
        yield opened


@pytest.fixture
def events_csv(tmp_path: Path) -> Callable[[str, list[str]], Path]:
    """Writes CSV rows under ``EVENTS_HEADER`` to a file of that name in ``tmp_path``."""

    def write(name: str, rows: list[str]) -> Path:
        path = tmp_path / name
        path.write_text("\n".join([EVENTS_HEADER, *rows]) + "\n")
        return path

    return write
