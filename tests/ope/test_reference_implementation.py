"""The estimators against an independent implementation: plain Python loops over rounds, written
from the papers' formulas (Dudík et al. 2011 DR, Swaminathan & Joachims 2015 SNIPS, Wang et al.
2017 Switch-DR in the Open Bandit Pipeline's form) and from the reward model's stated definition,
without calling the code under test.

The Open Bandit Pipeline (``obp``) cannot join recsmith's environment (it declares Python < 3.11
and pins old numpy/scipy/torch), so it is not a test here: ``benchmarks/ope_vs_obp.py`` runs it
from its own venv on its synthetic data and compares IPS/SNIPS/DM/DR/Switch-DR with the same q̂
(they agree to 1e-16, BENCHMARKS "recsmith's OPE against the Open Bandit Pipeline")."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from recsmith.ope import estimate

ACTIONS = [f"i{k}" for k in range(6)]
POSITIONS = ["1", "2", "3"]


def random_log(seed: int, rounds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each round logs an action at every position with a random propensity; the target spreads
    random mass (summing to < 1 sometimes) over a random subset of actions per position."""
    rng = random.Random(seed)
    log, target = [], []
    for r in range(rounds):
        for p in POSITIONS:
            action = rng.choice(ACTIONS)
            log.append(
                (f"r{r}", p, action, float(rng.random() < 0.3 + 0.1 * int(p)), rng.uniform(0.05, 1))
            )
            chosen = rng.sample(ACTIONS, rng.randint(1, 4))
            mass = [rng.random() for _ in chosen]
            total = sum(mass) / rng.uniform(0.7, 1.0)
            target += [(f"r{r}", p, a, m / total) for a, m in zip(chosen, mass, strict=True)]
    columns = ["round", "position", "action", "reward", "propensity"]
    return (
        pd.DataFrame(log, columns=columns),
        pd.DataFrame(target, columns=["round", "position", "action", "probability"]),
    )


def loo_model(rows: list[tuple], held_out: str, shrink: float):
    """The reward model's definition, fitted on every row not of round ``held_out``:
    μ_p = (Σ r_p + λ ḡ)/(n_p + λ), δ_a = Σ (r − μ_p)_a / (n_a + λ), q̂ = μ_p + δ_a."""
    train = [row for row in rows if row[0] != held_out]
    g = sum(row[3] for row in train) / len(train)
    mu = {}
    for p in POSITIONS:
        rewards = [row[3] for row in train if row[1] == p]
        mu[p] = (sum(rewards) + shrink * g) / (len(rewards) + shrink) if rewards or shrink else g
    delta = {}
    for a in ACTIONS:
        residuals = [row[3] - mu[row[1]] for row in train if row[2] == a]
        delta[a] = sum(residuals) / (len(residuals) + shrink) if residuals or shrink else 0.0
    return lambda p, a: mu[p] + delta[a]


def reference(log: pd.DataFrame, target: pd.DataFrame, clip: float, tau: float, shrink: float):
    rows = list(log.itertuples(index=False, name=None))
    pi = {}
    for r, p, a, prob in target.itertuples(index=False, name=None):
        pi.setdefault((r, p), {})[a] = prob
    sums = dict.fromkeys(["ips", "wr", "w", "dm", "dr", "switch"], 0.0)
    for rnd in dict.fromkeys(row[0] for row in rows):
        q = loo_model(rows, rnd, shrink)
        for r, p, a, reward, propensity in (row for row in rows if row[0] == rnd):
            policy = pi.get((r, p), {})
            w = policy.get(a, 0.0) / propensity
            dm = sum(prob * q(p, b) for b, prob in policy.items())
            sums["ips"] += min(w, clip) * reward
            sums["wr"] += w * reward
            sums["w"] += w
            sums["dm"] += dm
            sums["dr"] += dm + w * (reward - q(p, a))
            sums["switch"] += dm + (w * (reward - q(p, a)) if w <= tau else 0.0)
    n = len(rows)
    return {
        "ips": sums["ips"] / n,
        "snips": sums["wr"] / sums["w"],
        "dm": sums["dm"] / n,
        "dr": sums["dr"] / n,
        "switch-dr": sums["switch"] / n,
    }


@pytest.mark.parametrize(("seed", "shrink"), [(1, 0.0), (2, 10.0)])
def test_estimators_agree_with_loops_over_rounds(seed: int, shrink: float) -> None:
    log, target = random_log(seed, rounds=200)
    rounds = log["round"].nunique()
    report = estimate(
        log, target, clip=3.0, switch_tau=4.0, folds=rounds, shrinkage=shrink, bootstrap=20
    )
    expected = reference(log, target, clip=3.0, tau=4.0, shrink=shrink)
    for name, value in expected.items():
        assert report.values[name] == pytest.approx(value, abs=1e-9), name
    weights = log.merge(target, on=["round", "position", "action"], how="left")
    w = weights["probability"].fillna(0) / weights["propensity"]
    assert report.ess == pytest.approx(w.sum() ** 2 / (w**2).sum(), abs=1e-9)
    assert not math.isnan(report.intervals["dr"][0])
