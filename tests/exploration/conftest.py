"""A small simulated shop with a catalogue (creation times, categories, availability)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events, validate_items
from recsmith.simulate import simulate
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend


@pytest.fixture(scope="session")
def simulated() -> tuple[pd.DataFrame, list[Item]]:
    """Events and catalogue of a 300-user, 200-item simulated shop, validated as imports are."""
    sim = simulate(n_users=300, n_items=200, seed=11)
    (events, bad), (items, bad_items) = (
        validate_events(sim.events, EventSettings()),
        validate_items(sim.items),
    )
    assert not bad and not bad_items
    return events, items


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    """An empty store of each backend (SQLite, PostgreSQL) and its URL."""
    with open_backend(request.param, tmp_path) as opened:
        yield opened
