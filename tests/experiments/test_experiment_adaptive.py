"""Thompson allocation between variants: shares by hand and against an independent oracle
(P(one Beta above another) by numerical integration), draws against their logged propensities,
the spec's checks, and the adaptive report's IPS/SNIPS worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from recsmith.errors import ValidationError
from recsmith.experiments.adaptive import (
    BANK_DRAWS,
    allocate,
    arm_key,
    shares,
    variant_outcomes,
)
from recsmith.experiments.adaptive_report import adaptive_verdict, list_rewards, off_policy
from recsmith.experiments.live import LiveExperiment, LiveExperiments
from recsmith.experiments.spec import Experiment, Variant
from recsmith.exploration.arms import ArmCounts

EXP = Experiment(
    "ts",
    (Variant("control", "v1", 50), Variant("treatment", "v2", 50)),
    salt="ts:salt",
    allocation="thompson",
    min_share=0.1,
    burn_in=100,
)


def counts(shown: tuple[int, int], clicks: tuple[int, int], version: int = 1) -> ArmCounts:
    keys = [arm_key(EXP, "control"), arm_key(EXP, "treatment")]
    order = np.argsort(keys)
    return ArmCounts(
        np.asarray(keys, dtype=object)[order],
        np.asarray(shown, np.int64)[order],
        np.asarray(clicks, np.int64)[order],
        np.zeros(2, np.int64),
        version,
    )


def p_above(a: tuple[float, float], b: tuple[float, float]) -> float:
    """P(X > Y), X ~ Beta(a), Y ~ Beta(b), independent: ∫ f_X(x) F_Y(x) dx."""
    value, _ = integrate.quad(lambda x: stats.beta.pdf(x, *a) * stats.beta.cdf(x, *b), 0, 1)
    return float(value)


def test_burn_in_serves_the_weights_until_every_variant_has_its_impressions() -> None:
    # treatment far ahead, but control has 99 < 100 impressions: still 50/50
    assert np.allclose(shares(EXP, counts((99, 500), (0, 250))), [0.5, 0.5])
    assert np.allclose(shares(EXP, ArmCounts()), [0.5, 0.5])  # nothing counted yet


def test_shares_are_the_floor_plus_the_posterior_chance_of_being_best() -> None:
    """300 impressions each, 30 and 45 clicks: P(treatment best) by integration of the
    Beta(46, 256) and Beta(31, 271) posteriors; the share is 0.1 + 0.8 · P (floor 0.1, two
    variants), within 4 standard errors of the bank's 4,000 draws."""
    p = p_above((1 + 45, 1 + 255), (1 + 30, 1 + 270))
    assert 0.9 < p < 0.99  # a case where both the floor and the posterior matter
    got = shares(EXP, counts((300, 300), (30, 45)))
    se = 0.8 * math.sqrt(p * (1 - p) / BANK_DRAWS)
    assert got[1] == pytest.approx(0.1 + 0.8 * p, abs=4 * se)
    assert got.sum() == pytest.approx(1.0)
    # a hopeless control keeps its floor, never less
    assert shares(EXP, counts((5000, 5000), (0, 2500), version=2))[0] == pytest.approx(0.1)


def test_each_draw_logs_the_share_it_was_drawn_with_and_draws_follow_the_shares() -> None:
    arms = counts((300, 300), (30, 45))
    share = shares(EXP, arms)
    drawn = [allocate(EXP, arms, f"req-{i}") for i in range(20_000)]
    treated = np.array([d.variant == "treatment" for d in drawn])
    for d in drawn[:50]:
        assert d.propensity == share[1 if d.variant == "treatment" else 0]
        assert d.arm == arm_key(EXP, d.variant)
    se = math.sqrt(share[1] * share[0] / len(drawn))
    assert abs(treated.mean() - share[1]) < 5 * se
    assert allocate(EXP, arms, "req-7") == drawn[7]  # a request id replays its draw


def test_attributions_count_under_the_variant_arm_of_adaptive_experiments_only() -> None:
    fixed = Experiment("fx", EXP.variants, salt="fx:s")
    live = LiveExperiments((LiveExperiment(EXP), LiveExperiment(fixed)))
    frame = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "event_type": ["click"] * 4,
            "experiment": ["ts", "ts", "fx", None],
            "variant": ["treatment", "control", "treatment", None],
        }
    )
    out = variant_outcomes(frame, live)
    assert out["item_id"].tolist() == [arm_key(EXP, "treatment"), arm_key(EXP, "control")]
    assert len(variant_outcomes(frame, None)) == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_share": 0.5}, "--min-share"),  # 2 variants: each floor must be below 1/2
        ({"min_share": -0.1}, "--min-share"),
        ({"kpi": "revenue"}, "--kpi"),
        ({"allocation": "ucb"}, "--allocation"),
        ({"burn_in": -1}, "--burn-in"),
    ],
)
def test_the_spec_refuses_what_cannot_allocate(change: dict, field: str) -> None:
    data = {**EXP.to_json(), **change}
    with pytest.raises(ValidationError) as err:
        Experiment.from_json(data)
    assert err.value.field == field


def test_a_record_from_before_allocations_reads_as_fixed_weights() -> None:
    old = {k: v for k, v in EXP.to_json().items() if k not in ("allocation", "kpi", "burn_in")}
    assert not Experiment.from_json(old).adaptive
    assert Experiment.from_json(EXP.to_json()) == EXP


def _lists() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four lists of two items: (variant, assignment propensity, clicked positions)."""
    spec = [
        ("r1", "control", 0.5, [1]),
        ("r2", "treatment", 0.25, [1, 2]),
        ("r3", "control", 0.8, []),
        ("r4", "treatment", 0.4, [2, 2]),  # two events on one slot count once
    ]
    shown = pd.DataFrame(
        [(rid, "ts", variant, p, pos, f"i{pos}") for rid, variant, p, _ in spec for pos in (1, 2)],
        columns=[
            "recommendation_id",
            "experiment",
            "variant",
            "assignment_propensity",
            "position",
            "item_id",
        ],
    )
    attributions = pd.DataFrame(
        [(rid, pos, "click") for rid, _, _, clicked in spec for pos in clicked],
        columns=["recommendation_id", "position", "kind"],
    )
    return shown, attributions


def test_the_off_policy_estimates_by_hand() -> None:
    """Rewards per impression: r1 1/2, r2 2/2, r3 0, r4 1/2. IPS of "all control":
    (0.5/0.5 + 0/0.8) / 4 = 0.25; SNIPS: (1 + 0) / (2 + 1.25) = 0.30769…; "all treatment":
    IPS (1/0.25 + 0.5/0.4) / 4 = 1.3125, SNIPS (4 + 1.25) / (4 + 2.5) = 0.80769…"""
    rewards = list_rewards(EXP, *_lists())
    assert rewards.set_index("round")["reward"].to_dict() == {
        "r1": 0.5,
        "r2": 1.0,
        "r3": 0.0,
        "r4": 0.5,
    }
    found = off_policy(EXP, rewards)
    assert found is not None and found.lists == 4 and found.unlogged == 0
    assert found.values["control"]["ips"][0] == pytest.approx(0.25)
    assert found.values["control"]["snips"][0] == pytest.approx(1 / 3.25)
    assert found.values["treatment"]["ips"][0] == pytest.approx(1.3125)
    assert found.values["treatment"]["snips"][0] == pytest.approx(5.25 / 6.5)


def test_the_adaptive_verdict_reads_disjoint_intervals_only() -> None:
    def off(c: tuple[float, float, float], t: tuple[float, float, float]):  # type: ignore[no-untyped-def]
        from recsmith.experiments.adaptive_report import OffPolicy

        by = {"control": c, "treatment": t}
        return OffPolicy(
            {
                v: {"snips": (x[0], (x[1], x[2])), "ips": (x[0], (x[1], x[2]))}
                for v, x in by.items()
            },
            10,
            0,
        )

    assert adaptive_verdict(
        EXP, "treatment", off((0.1, 0.08, 0.12), (0.2, 0.15, 0.25)), []
    ).startswith("promote treatment")
    assert adaptive_verdict(
        EXP, "treatment", off((0.1, 0.08, 0.12), (0.05, 0.03, 0.07)), []
    ).startswith("stop treatment")
    assert adaptive_verdict(
        EXP, "treatment", off((0.1, 0.08, 0.12), (0.11, 0.09, 0.14)), []
    ).startswith("keep running")
    failed = adaptive_verdict(
        EXP, "treatment", off((0.1, 0.08, 0.12), (0.2, 0.15, 0.25)), ["error_rate"]
    )
    assert failed.startswith("stop treatment: guardrail error_rate")
