"""A fresh store per test, on SQLite and on PostgreSQL (skipped without a server unless
``RECSMITH_REQUIRE_POSTGRES=1``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsmith.store.base import EventStore
from recsmith.testing.backends import open_backend


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    with open_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def store(backend: tuple[EventStore, str]) -> EventStore:
    return backend[0]
