"""The cross-fitted reward model: no row's own reward reaches its prediction, and context
columns are used when they carry signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.ope import estimate
from recsmith.ope.reward_model import Rows, assign_folds, cross_fitted


def test_pure_noise_rewards_are_not_predicted_from_themselves() -> None:
    """Rewards independent of 40 noise features: a model that saw a row's reward would predict it
    (in-sample ridge fits the noise, correlation ≈ √(40/300) ≈ 0.35); cross-fitted predictions
    cannot, so their correlation with the reward is not positive."""
    rng = np.random.default_rng(5)
    n = 300
    rows = Rows(
        round=np.arange(n),
        action=rng.integers(0, 3, n),
        position=np.zeros(n, dtype=np.int64),
        context=rng.normal(size=(n, 40)),
    )
    reward = rng.normal(size=n)
    (predicted,) = cross_fitted(rows, reward, [rows], assign_folds(n, 5, seed=0), ridge=1e-3)
    assert np.corrcoef(predicted, reward)[0, 1] < 0.05


def test_context_columns_let_dm_find_a_linear_effect() -> None:
    """Reward = 0.5 + 0.3·x_0 for every action (plus noise): the target shows action a0 only
    where x_0 > 0 (nothing elsewhere), so its value on these rounds is the mean of
    1{x_0 > 0}·(0.5 + 0.3·x_0); a model without the context predicts 0.5 everywhere and misses
    by 0.3·E[x_0⁺] ≈ 0.12, with it DM is near the truth."""
    rng = np.random.default_rng(7)
    n = 4000
    x = rng.normal(size=n)
    action = rng.integers(0, 2, n)
    log = pd.DataFrame(
        {
            "round": np.arange(n).astype(str),
            "action": np.where(action == 0, "a0", "a1"),
            "reward": 0.5 + 0.3 * x + rng.normal(scale=0.1, size=n),
            "propensity": 0.5,
            "x_0": x,
        }
    )
    target = pd.DataFrame({"round": log["round"], "action": "a0", "probability": (x > 0) * 1.0})
    truth = float(np.mean((x > 0) * (0.5 + 0.3 * x)))  # rounds that show nothing earn 0
    with_context = estimate(log, target, ("dm",), bootstrap=10).values["dm"]
    without = estimate(log.drop(columns="x_0"), target, ("dm",), bootstrap=10).values["dm"]
    assert with_context == pytest.approx(truth, abs=0.01)
    assert abs(without - truth) > 0.05
