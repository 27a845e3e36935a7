"""Thompson slots learn from the counts: the posterior bank, and a pipeline that shows the arm the
evidence favours, with the share of banked draws as its propensity."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.exploration.arms import ArmCounts
from recsmith.exploration.explorer import ExploreRequest
from recsmith.exploration.thompson import bank_seed, posterior_bank
from recsmith.pipeline.artifact import load_artifact, save_pipeline, train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ARMS = ("arm-good", "arm-bad", "arm-new")


def test_the_bank_draws_from_the_beta_posteriors() -> None:
    trials, wins = np.array([100, 10, 0]), np.array([30, 9, 0])
    bank = posterior_bank(trials, wins, (1.0, 1.0), 20_000, seed=1)
    # Beta(31, 71), Beta(10, 2), Beta(1, 1): means 31/102, 10/12, 1/2
    assert bank.mean(axis=0) == pytest.approx([31 / 102, 10 / 12, 0.5], abs=0.005)
    assert bank[:, 0].var() == pytest.approx(31 * 71 / (102**2 * 103), rel=0.05)
    again = posterior_bank(trials, wins, (1.0, 1.0), 20_000, seed=1)
    assert np.array_equal(bank, again)
    ids = np.asarray(ARMS, dtype=object)
    assert bank_seed(3, ids) == bank_seed(3, ids.copy()) != bank_seed(4, ids)


@pytest.fixture(scope="module")
def bandit(simulated: tuple[pd.DataFrame, list[Item]]) -> Pipeline:
    events, items = simulated
    fresh = [Item(item_id=i, categories=["books"], created_at=NOW) for i in ARMS]
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]},
            "ranking": {"enabled": False},
            "explore": {"policy": "thompson", "epsilon": 1.0, "slots": [1], "bank": 512},
        }
    )
    return train_pipeline(config, events, dict(EventSettings().weights), items=[*items, *fresh])


def test_the_slot_goes_to_the_arm_the_evidence_favours(bandit: Pipeline) -> None:
    counts = ArmCounts(
        np.asarray(sorted(ARMS), dtype=object),  # arm-bad, arm-good, arm-new
        np.array([400, 400, 2]),  # shown
        np.array([8, 200, 1]),  # clicks: 2 %, 50 %, and 1 of 2 (wide)
        np.array([0, 0, 0]),
        version=1,
    )
    users = ["u0001"] * 400
    ids = [f"req-{n}" for n in range(400)]
    now = int(NOW.timestamp() * 1_000_000)
    answer = bandit.answer(users, 3, explore=ExploreRequest(ids, counts, now))
    first = pd.Series([row[0] for row in answer.lists.item_ids])
    p = pd.Series([row[0] for row in answer.propensities])
    assert set(first) <= set(ARMS) and "arm-bad" not in set(first)
    # arm-good wins unless arm-new's Beta(2, 2) draw beats Beta(201, 201) (about 1/2 of draws:
    # both centred on 0.5), so both show, each about as often as its logged propensity says
    for arm in ("arm-good", "arm-new"):
        share = (first == arm).mean()
        logged = p[first == arm]
        assert np.ptp(logged) == 0  # one probability per arm for this user and these counts
        assert share == pytest.approx(logged.iloc[0], abs=0.08)
    assert p[first == "arm-good"].iloc[0] + p[first == "arm-new"].iloc[0] == pytest.approx(1.0)
    # once arm-new has failed often, the bandit stops showing it
    failed = ArmCounts(
        counts.arms, np.array([400, 400, 200]), np.array([8, 200, 4]), counts.purchases, version=2
    )
    answer = bandit.answer(users, 3, explore=ExploreRequest(ids, failed, now))
    assert {row[0] for row in answer.lists.item_ids} == {"arm-good"}
    assert answer.propensities[0][0] == pytest.approx(1.0)


def test_a_saved_exploring_pipeline_loads_and_draws_the_same(
    bandit: Pipeline, tmp_path: Path
) -> None:
    """``[explore]`` travels with the release: loaded, the same ids and counts draw the same."""
    save_pipeline(bandit, tmp_path / "release")
    loaded = load_artifact(tmp_path / "release")
    assert isinstance(loaded, Pipeline) and loaded.config.explore == bandit.config.explore
    counts = ArmCounts(
        np.asarray(sorted(ARMS), dtype=object),
        np.array([5, 5, 5]),
        np.array([1, 2, 3]),
        np.zeros(3, np.int64),
        version=1,
    )
    ids = [f"req-{n}" for n in range(50)]
    now = int(NOW.timestamp() * 1_000_000)
    users = ["u0001"] * 50
    a = bandit.answer(users, 3, explore=ExploreRequest(ids, counts, now))
    b = loaded.answer(users, 3, explore=ExploreRequest(ids, counts, now))
    assert [list(r) for r in a.lists.item_ids] == [list(r) for r in b.lists.item_ids]
    assert a.propensities == b.propensities
