"""Serving's context features (#15): the hour and day are the clock's when the request gives none
(not the training reference time's, which made ``hour`` a constant), the request's hour wins, and a
saved pipeline computes the same property and profile features after loading."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item, User
from recsmith.pipeline.artifact import load_pipeline, save_pipeline, train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.ranking.features import candidate_features, feature_names
from recsmith.testing.format1 import downgrade_to_format1


@pytest.fixture(scope="module")
def trained(events: pd.DataFrame, items: list[Item], config: PipelineConfig) -> Pipeline:
    users = sorted(set(events["user_id"].dropna()))
    profiles = [
        User(user_id=u, properties={"plan": ["free", "pro"][n % 2]}) for n, u in enumerate(users)
    ]
    return train_pipeline(
        config, events, dict(EventSettings().weights), items=items, users=profiles
    )


def _columns(pipe: Pipeline, names: list[str], context: dict | None = None) -> np.ndarray:
    user = pipe.bundle.users.external_ids[:3]
    queries = pipe.queries(np.asarray(user, object), None, None, [context or {}] * 3)
    cands = pipe.candidates(queries, 10)
    features = candidate_features(pipe.state, queries, cands)
    every = feature_names(cands.sources, pipe.state)
    return features[:, [every.index(n) for n in names]]


def test_the_hour_and_day_follow_the_clock_not_the_training_time(
    trained: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained_hour = (trained.state.reference_ts // 3_600_000_000) % 24
    hour = (trained_hour + 5) % 24
    sunday = datetime(2026, 11, 29, hour, 10, tzinfo=UTC)  # a Sunday: weekday 6
    monkeypatch.setattr(trained, "clock", sunday.timestamp)
    got = _columns(trained, ["hour", "day_of_week", "device"])
    assert (got[:, 0] == hour).all() and (got[:, 1] == 6).all()
    assert np.isnan(got[:, 2]).all()  # no device given: unknown, not "other"
    later = sunday.replace(hour=(hour + 1) % 24)
    monkeypatch.setattr(trained, "clock", later.timestamp)
    assert (_columns(trained, ["hour"])[:, 0] == (hour + 1) % 24).all()
    given = _columns(trained, ["hour", "device"], {"hour": 9, "device": "app"})
    assert (given[:, 0] == 9).all() and (given[:, 1] == 4).all()  # the request's hour wins


def test_a_saved_pipeline_computes_the_same_property_features(
    trained: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["user_affinity_brand", "user_affinity_price_band", "segment_popularity_plan"]
    assert set(names) <= set(feature_names(("x",), trained.state))
    fixed = 1_790_000_000.0
    monkeypatch.setattr(trained, "clock", lambda: fixed)
    before = _columns(trained, names)
    save_pipeline(trained, tmp_path / "p")
    loaded = load_pipeline(tmp_path / "p")
    loaded.clock = lambda: fixed
    np.testing.assert_array_equal(_columns(loaded, names), before)
    assert np.isfinite(before).any(axis=0).all()  # each column has values to compare


def test_a_ranker_trained_on_another_feature_layout_is_not_used(
    trained: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A release saved before the property features existed has a state without them: its
    ranker's columns no longer line up, so the fused order serves (with a warning), never a
    ranker reading the wrong columns."""
    assert trained.ranker is not None
    save_pipeline(trained, tmp_path / "p")
    downgrade_to_format1(tmp_path / "p")  # such a release predates format 2 too
    npz = tmp_path / "p" / "pipeline.npz"
    with np.load(npz) as saved:
        older = {k: saved[k] for k in saved.files if not k.startswith(("item_property", "profile"))}
    np.savez(npz, **older)
    assert load_pipeline(tmp_path / "p").ranker is None
    assert "serving the fused order until the next training" in caplog.text
    save_pipeline(trained, tmp_path / "q")
    assert load_pipeline(tmp_path / "q").ranker is not None  # the same layout: kept
