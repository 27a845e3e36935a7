"""The estimators on a bandit whose truth is known, over many seeds.

Logging policy: uniform over 5 actions (π₀ = 0.2). Context x ∈ {0, 1} with probability ½ each;
Bernoulli rewards with mean MEANS[x][a]. Target: deterministic, action 4 when x = 0 and action 0
when x = 1, so its true value is ½·0.5 + ½·0.6 = 0.55. The simulation of every seed is drawn at
once (``recsmith.ope.synthetic``); each seed's log is then estimated as a user would, through
``estimate``. The truth is the hand-computed constant, not the generator's ``true_value``."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.ope import estimate
from recsmith.ope.synthetic import Bandit, logs

MEANS = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.5, 0.4, 0.3, 0.2]])
TRUTH = 0.5 * 0.5 + 0.5 * 0.6
SEEDS, ROUNDS = 200, 1000
NAMES = ("ips", "snips", "dm", "dr", "switch-dr")


@pytest.fixture(scope="module")
def runs() -> dict[str, np.ndarray]:
    """Estimates and interval bounds per estimator and seed, plus clipped IPS (C = 2.5)."""
    bandit = Bandit(MEANS, np.array([4, 0]))
    assert bandit.true_value == pytest.approx(TRUTH)
    out: dict[str, list] = {name: [] for name in [*NAMES, "clipped"]}
    bounds: dict[str, list] = {name: [] for name in NAMES}
    for s, (log, target) in enumerate(logs(bandit, SEEDS, ROUNDS, seed=16)):
        report = estimate(log, target, NAMES, folds=5, bootstrap=300, seed=s)
        for name in NAMES:
            out[name].append(report.values[name])
            bounds[name].append(report.intervals[name])
        out["clipped"].append(estimate(log, target, ("ips",), clip=2.5, bootstrap=1).values["ips"])
    result = {name: np.array(values) for name, values in out.items()}
    for name in NAMES:
        low, high = np.array(bounds[name]).T
        result[f"{name}_covers"] = (low <= TRUTH) & (high >= TRUTH)
    return result


@pytest.mark.parametrize("name", ["ips", "dr", "switch-dr"])
def test_unbiased_estimators_average_to_the_truth(runs: dict[str, np.ndarray], name: str) -> None:
    values = runs[name]
    standard_error = values.std(ddof=1) / np.sqrt(SEEDS)
    assert abs(values.mean() - TRUTH) < 3 * standard_error, (values.mean(), standard_error)


@pytest.mark.parametrize("name", ["ips", "snips", "dr"])
def test_95_percent_intervals_cover_near_95_percent(runs: dict[str, np.ndarray], name: str) -> None:
    coverage = runs[f"{name}_covers"].mean()
    binomial_sd = np.sqrt(0.95 * 0.05 / SEEDS)
    assert abs(coverage - 0.95) < 3 * binomial_sd, coverage


def test_snips_and_dr_have_lower_variance_than_ips(runs: dict[str, np.ndarray]) -> None:
    assert runs["snips"].var() < 0.8 * runs["ips"].var()
    assert runs["dr"].var() < 0.8 * runs["ips"].var()


def test_clipping_lowers_variance_and_adds_bias(runs: dict[str, np.ndarray]) -> None:
    clipped = runs["clipped"]
    assert clipped.var() < 0.5 * runs["ips"].var()
    # weights are 5 or 0: capped at 2.5 the estimate is halved in expectation
    standard_error = clipped.std(ddof=1) / np.sqrt(SEEDS)
    assert clipped.mean() == pytest.approx(TRUTH / 2, abs=3 * standard_error)
    assert TRUTH - clipped.mean() > 10 * standard_error
