"""A small simulated shop with a catalogue (creation times, categories, availability)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events, validate_items
from recsmith.simulate import Simulation, simulate
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend


@pytest.fixture(scope="session")
def sim() -> Simulation:
    return simulate(n_users=300, n_items=200, seed=11)


@pytest.fixture(scope="session")
def events(sim: Simulation) -> pd.DataFrame:
    frame, rejected = validate_events(sim.events, EventSettings())
    assert not rejected
    return frame


@pytest.fixture(scope="session")
def items(sim: Simulation) -> list[Item]:
    good, rejected = validate_items(sim.items)
    assert not rejected
    return good


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    """An empty store of each backend (SQLite, PostgreSQL) and its URL."""
    with open_backend(request.param, tmp_path) as opened:
        yield opened
