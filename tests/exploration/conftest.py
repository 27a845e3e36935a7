"""A small simulated shop with a catalogue (creation times, categories, availability)."""

from __future__ import annotations

import random
import uuid
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


@pytest.fixture
def seeded_recommendation_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Recommendation ids drawn from a fixed seed instead of ``uuid4_hex``. The ids seed every
    bandit and exploration draw, so the live learning tests' thresholds (e.g. over 90 % of late
    lists right) would otherwise miss on a rare unlucky run; seeded, each run is the same run."""
    rng = random.Random(20261204)
    monkeypatch.setattr(
        "recsmith.serving.routers.recommend.uuid4_hex",
        lambda: uuid.UUID(int=rng.getrandbits(128), version=4).hex,
    )
