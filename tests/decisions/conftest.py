"""Every decision-log test runs on SQLite and on PostgreSQL (``recsmith.testing.backends``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    with open_backend(request.param, tmp_path) as (opened, _):
        yield opened
