"""A small simulated shop and a small pipeline configuration for the pipeline tests."""

from __future__ import annotations

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events, validate_items
from recsmith.pipeline.config import PipelineConfig
from recsmith.simulate import Simulation, simulate


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


@pytest.fixture(scope="session")
def config() -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 40},
                    {"name": "recent", "model": "itemknn", "use": "recent", "quota": 20},
                    {"name": "trending", "model": "trending", "quota": 10},
                    {"name": "new", "kind": "new_arrivals", "quota": 5},
                ]
            },
            "ranking": {"enabled": True, "label_share": 0.2, "params": {"n_estimators": 20}},
        }
    )
