"""Every estimator on a 4-round log, against values worked out by hand (in the comments).

Log (no positions), target π, weights w = π(a)/π₀(a):

    round  action reward π₀    target                w
    r1     A      1      0.5   A 0.8, B 0.2          1.6
    r2     B      0      0.5   A 0.8, B 0.2          0.4
    r3     A      0      0.25  A 1.0                 4
    r4     B      1      0.75  A 0.5, B 0.5          2/3

Reward model: per-action mean (shrinkage 0), cross-fitted with 4 folds over 4 rounds, i.e.
leave one round out (so the seeded fold permutation cannot change the result):

    without r1: q(A) = mean{r3} = 0,   q(B) = mean{r2, r4} = 0.5 → d̂ = .8·0 + .2·.5 = 0.1,  q̂ = 0
    without r2: q(A) = mean{r1, r3} = .5, q(B) = mean{r4} = 1 → d̂ = .8·.5 + .2·1 = 0.6,  q̂ = 1
    without r3: q(A) = mean{r1} = 1,   q(B) = .5             → d̂ = 1·1 = 1,            q̂ = 1
    without r4: q(A) = .5,             q(B) = mean{r2} = 0   → d̂ = .5·.5 + .5·0 = 0.25, q̂ = 0
"""

from __future__ import annotations

import pandas as pd
import pytest

from recsmith.ope import estimate

LOG = pd.DataFrame(
    {
        "round": ["r1", "r2", "r3", "r4"],
        "action": ["A", "B", "A", "B"],
        "reward": [1.0, 0.0, 0.0, 1.0],
        "propensity": [0.5, 0.5, 0.25, 0.75],
    }
)
TARGET = pd.DataFrame(
    {
        "round": ["r1", "r1", "r2", "r2", "r3", "r4", "r4"],
        "action": ["A", "B", "A", "B", "A", "A", "B"],
        "probability": [0.8, 0.2, 0.8, 0.2, 1.0, 0.5, 0.5],
    }
)


def run(**options: float) -> dict[str, float]:
    report = estimate(LOG, TARGET, folds=4, shrinkage=0.0, bootstrap=10, **options)
    return report.values


def test_ips_snips_dm_dr_match_the_hand_computation() -> None:
    values = run()
    assert values["ips"] == pytest.approx((1.6 * 1 + 0.4 * 0 + 4 * 0 + 2 / 3 * 1) / 4, abs=1e-12)
    assert values["snips"] == pytest.approx((1.6 + 2 / 3) / (1.6 + 0.4 + 4 + 2 / 3), abs=1e-12)
    assert values["snips"] == pytest.approx(0.34, abs=1e-12)
    assert values["dm"] == pytest.approx((0.1 + 0.6 + 1 + 0.25) / 4, abs=1e-12)
    # DR per round: d̂ + w (r − q̂) = 0.1 + 1.6·1, 0.6 + 0.4·(−1), 1 + 4·(−1), 0.25 + 2/3·1
    assert values["dr"] == pytest.approx((1.7 + 0.2 - 3 + 0.25 + 2 / 3) / 4, abs=1e-12)


def test_clipping_caps_the_weight_from_above() -> None:
    # C = 1: weights 1.6 → 1, 0.4, 4 → 1, 2/3 stay
    assert run(clip=1.0)["ips"] == pytest.approx((1 + 2 / 3) / 4, abs=1e-12)
    # a cap above every weight changes nothing
    assert run(clip=10.0)["ips"] == pytest.approx(run()["ips"], abs=1e-12)


def test_switch_dr_drops_the_correction_above_tau() -> None:
    # τ = 2 drops r3's correction (w = 4): its contribution is d̂ = 1 alone
    assert run(switch_tau=2.0)["switch-dr"] == pytest.approx(
        (1.7 + 0.2 + 1 + 0.25 + 2 / 3) / 4, abs=1e-12
    )
    # τ above every weight is DR
    assert run(switch_tau=5.0)["switch-dr"] == pytest.approx(run()["dr"], abs=1e-12)


def test_positions_make_each_round_position_one_impression() -> None:
    """Two rounds of two positions; estimate per impression (4 impressions):
    w = .5/.5, 1/.5, .2/.4, 0 (target gives r2/p2's action no mass) = 1, 2, 0.5, 0."""
    log = pd.DataFrame(
        {
            "round": ["r1", "r1", "r2", "r2"],
            "position": ["1", "2", "1", "2"],
            "action": ["A", "B", "A", "C"],
            "reward": [1.0, 0.0, 1.0, 1.0],
            "propensity": [0.5, 0.5, 0.4, 0.5],
        }
    )
    target = pd.DataFrame(
        {
            "round": ["r1", "r1", "r2", "r2"],
            "position": ["1", "2", "1", "2"],
            "action": ["A", "B", "A", "B"],
            "probability": [0.5, 1.0, 0.2, 1.0],
        }
    )
    report = estimate(log, target, ("ips", "snips"), folds=2, bootstrap=10)
    assert report.values["ips"] == pytest.approx((1 * 1 + 2 * 0 + 0.5 * 1 + 0) / 4, abs=1e-12)
    assert report.values["snips"] == pytest.approx(1.5 / 3.5, abs=1e-12)
    assert report.rounds == 2 and report.impressions == 4
    # ESS of the weights 1, 2, 0.5, 0: 3.5² / 5.25
    assert report.ess == pytest.approx(3.5**2 / 5.25, abs=1e-12)
