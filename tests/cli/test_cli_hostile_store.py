"""Training is robust to whatever the store holds: values validation would refuse today (older
data, another writer) are dropped or clipped with one warning, never NaN/inf inside a model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.simulate import simulate
from recsmith.store.ingest import ingest_events, ingest_items
from recsmith.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

#: (event_type, stored value): each beyond what the door accepts now
HOSTILE = [
    ("rating", 1e308),  # once: iALS "NaN encountered in factors", pipeline training exit 1
    ("rating", -1e308),
    ("rating", 3e38),  # finite in float32, but two of them on one pair overflow the sum
    ("rating", 3e38),
    ("rating", math.inf),
    ("rating", -math.inf),
    ("rating", math.nan),  # stored as NULL: a rating without its value
    ("play", -5.0),  # log(1 + value) is NaN
    ("play", 1e308),
]


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    sim = simulate(n_users=150, n_items=120, days=20, seed=11)
    path = tmp_path_factory.mktemp("hostile") / "s.sqlite"
    store = SQLiteStore(path)
    try:
        assert not ingest_events(store, sim.events, EventSettings(), source="sim").rejected
        stamp = {"created_at": "2026-01-01T00:00:00Z"}
        assert not ingest_items(store, [{**i, **stamp} for i in sim.items], source="sim").rejected
        users = sim.events["user_id"].unique()[:3]
        items = sim.events["item_id"].unique()[:3]
        records = [
            {
                "user_id": users[n % 3],
                "item_id": items[0] if n in (2, 3) else items[n % 3],
                "event_type": kind,
                "value": 1.0,
                "timestamp": "2026-01-10T00:00:00Z",
                "event_id": f"hostile-{n}",
            }
            for n, (kind, _) in enumerate(HOSTILE)
        ]
        frame, rejected = validate_events(records, EventSettings())
        assert not rejected
        frame["value"] = [value for _, value in HOSTILE]  # past the door, as old data would be
        assert store.append(frame).inserted == len(HOSTILE)
        stored = pd.concat(list(store.scan()), ignore_index=True)
        held = stored.set_index("event_id").loc[[f"hostile-{n}" for n in range(len(HOSTILE))]]
        assert held["value"].iloc[0] == 1e308 and np.isinf(held["value"].iloc[4])
    finally:
        store.close()
    return f"sqlite:///{path}"


def test_ials_trains_with_finite_factors(hostile_store: str, tmp_path: Path) -> None:
    out = tmp_path / "ials"
    args = ["train", "--store", hostile_store, "--model", "ials", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    model = ModelBundle.load(out).model
    assert np.isfinite(model.user_factors_).all() and np.isfinite(model.item_factors_).all()


def test_the_example_pipeline_trains_and_saves(hostile_store: str, tmp_path: Path) -> None:
    out = tmp_path / "pipe"
    pipeline = ROOT / "examples" / "pipeline.toml"
    args = ["train", "--store", hostile_store, "--pipeline", str(pipeline), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["kind"] == "pipeline"
