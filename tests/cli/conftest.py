"""CLI fixtures: a small simulated events file in the batch CLI's CSV layout."""

from pathlib import Path

import pytest

from recsmith.simulate import simulate


@pytest.fixture(scope="session")
def events_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``user_id,item_id,timestamp,value`` as the issue fixes it (value = event weight)."""
    sim = simulate(n_users=300, n_items=200, seed=3)
    weight = sim.events["event_type"].map({"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0})
    frame = sim.events.assign(value=weight)[["user_id", "item_id", "timestamp", "value"]]
    path = tmp_path_factory.mktemp("data") / "events.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def small_pipeline() -> str:
    """A two-source pipeline with a quick ranker (what the pipeline CLI tests train)."""
    return """
[[retrieval.sources]]
name = "knn"
model = "itemknn"
quota = 40
[[retrieval.sources]]
name = "trending"
model = "trending"
quota = 10
[ranking]
params = { n_estimators = 20 }
"""
