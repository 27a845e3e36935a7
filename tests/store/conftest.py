"""The store tests' ``store``: each backend this machine runs (``testing.backends``), opened in a
fresh place per test — one fixture for every file that checks a contract on both backends."""

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
