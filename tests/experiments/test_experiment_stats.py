"""The experiment statistics against hand-computed values and independent plain-Python
implementations, and the sequential p-value's promise checked by simulating A/A experiments."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from recsmith.errors import ValidationError
from recsmith.experiments import stats

PHI = NormalDist()


def _linearised_se(x: list[float], y: list[float]) -> float:
    """The ratio's standard error from its influence function (x_i - r y_i) / mean(y): the same
    delta method derived another way, in plain Python."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    r = mx / my
    z = [(a - r * b) / my for a, b in zip(x, y, strict=True)]
    mz = sum(z) / n
    return math.sqrt(sum((v - mz) ** 2 for v in z) / (n - 1) / n)


def test_ratio_estimate_matches_a_hand_computation() -> None:
    # x = clicks (1, 0, 2), y = impressions (2, 1, 3): r = 1/2; linearised values
    # (0, -0.25, 0.25), sample variance 0.0625, so se = sqrt(0.0625 / 3)
    r, se = stats.ratio_estimate(np.float64(3), 3.0, 6.0, 5.0, 14.0, 8.0)
    assert r == pytest.approx(0.5)
    assert se == pytest.approx(math.sqrt(0.0625 / 3))


def test_ratio_estimate_matches_the_influence_function_on_random_units() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(1, 20, 400).astype(float)
    x = rng.binomial(y.astype(int), 0.1).astype(float)
    _, se = stats.ratio_estimate(
        np.float64(400), x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()
    )
    assert se == pytest.approx(_linearised_se(list(x), list(y)), rel=1e-9)


def test_relative_lift_matches_the_hand_formula() -> None:
    lift, se, p = stats.relative_lift(
        np.float64(0.12), np.float64(0.01), np.float64(0.10), np.float64(0.01)
    )
    # (t/c) - 1 = 0.2; se = sqrt(0.01^2/0.1^2 + 0.12^2 * 0.01^2 / 0.1^4) = sqrt(0.0244)
    assert lift == pytest.approx(0.2)
    assert se == pytest.approx(math.sqrt(0.0244))
    assert p == pytest.approx(2 * (1 - PHI.cdf(0.2 / math.sqrt(0.0244))))


def test_srm_matches_a_hand_chi_square() -> None:
    # (520 - 500)^2 / 500 * 2 = 1.6 on one degree of freedom: p = erfc(sqrt(1.6 / 2))
    assert stats.srm_p({"a": 520, "b": 480}, {"a": 0.5, "b": 0.5}) == pytest.approx(
        math.erfc(math.sqrt(0.8))
    )
    # 90/10 weights: 880/120 against 900/100 → 400/900 + 400/100 = 4.444...
    p = stats.srm_p({"c": 880, "t": 120}, {"c": 90, "t": 10})
    assert p == pytest.approx(math.erfc(math.sqrt((400 / 900 + 4) / 2)))


def test_plan_matches_the_two_proportion_formula() -> None:
    p1, p2 = 0.03, 0.0315
    z = PHI.inv_cdf(0.975) + PHI.inv_cdf(0.8)
    expected = math.ceil(z**2 * (p1 * (1 - p1) + p2 * (1 - p2)) / (p2 - p1) ** 2)
    assert stats.plan(0.03, 0.05) == expected
    assert 207_000 < expected < 209_000  # the textbook figure for 3 % baseline, 5 % lift


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"baseline_ctr": 0.0, "mde": 0.05}, "--baseline-ctr"),
        ({"baseline_ctr": 0.03, "mde": 0.0}, "--mde"),
        ({"baseline_ctr": 0.03, "mde": 0.05, "power": 1.0}, "--power"),
    ],
)
def test_plan_names_a_bad_argument(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        stats.plan(**kwargs)
    assert err.value.field == field


def _lr(theta: float, se: float, tau: float) -> float:
    v = se * se
    return math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * theta**2 / (2 * v * (v + tau**2)))


def test_msprt_matches_the_closed_form() -> None:
    theta, se = 0.03, 0.012
    assert stats.msprt_p(np.float64(theta), np.float64(se), (0.05,)) == pytest.approx(
        1 / _lr(theta, se, 0.05)
    )
    mixed = sum(_lr(theta, se, t) for t in (0.05, 0.2, 1.0)) / 3
    assert stats.msprt_p(np.float64(theta), np.float64(se)) == pytest.approx(1 / mixed)
    assert stats.msprt_p(np.float64(0.0), np.float64(0.0)) == 1.0  # no information: no evidence
    # a huge lift is not overflow: p is tiny, not NaN
    assert 0 <= stats.msprt_p(np.float64(5.0), np.float64(0.01)) < 1e-100


def test_a_large_lift_on_few_units_is_evidence() -> None:
    # +200 % with se 0.5 (a few hundred units): one tau = 0.05 sees no evidence, the mixture does
    assert stats.msprt_p(np.float64(2.0), np.float64(0.5), (0.05,)) > 0.5
    assert stats.msprt_p(np.float64(2.0), np.float64(0.5)) < 0.05


def test_summarize_and_compare_on_a_hand_built_frame() -> None:
    frame = pd.DataFrame(
        {
            "unit": ["u1", "u2", "u3", "u4", "u5", "u6"],
            "variant": ["control"] * 3 + ["treatment"] * 3,
            "impressions": [2, 1, 3, 4, 2, 2],
            "clicks": [1, 0, 2, 2, 1, 2],
            "purchases": [0, 0, 1, 1, 0, 2],
            "revenue": [0.0, 0.0, 30.0, 10.0, 0.0, 50.0],
        }
    )
    s = stats.summarize(frame)
    c, t = s["control"], s["treatment"]
    assert (c["units"], c["impressions"], c["clicks"]) == (3, 6, 3)
    assert c["ctr"].value == pytest.approx(0.5)
    assert c["ctr"].se == pytest.approx(math.sqrt(0.0625 / 3))
    assert t["ctr"].value == pytest.approx(5 / 8)
    assert t["conversion"].value == pytest.approx(2 / 3)  # purchases > 0, not purchase count
    # revenue per unit of (10, 0, 50): mean 20, sample sd sqrt(700), se sqrt(700 / 3)
    assert t["revenue_per_unit"].value == pytest.approx(20.0)
    assert t["revenue_per_unit"].se == pytest.approx(math.sqrt(700 / 3))
    lo, hi = t["revenue_per_unit"].ci
    assert (lo, hi) == pytest.approx(
        (20 - 1.959964 * math.sqrt(700 / 3), 20 + 1.959964 * math.sqrt(700 / 3))
    )
    ctr = next(x for x in stats.compare(s, "control") if x.metric == "ctr")
    assert ctr.lift == pytest.approx((5 / 8) / 0.5 - 1)
    assert ctr.ci[0] < ctr.lift < ctr.ci[1]
    assert (ctr.variant, ctr.control) == ("treatment", "control")


def _aa_streams(
    rng: np.random.Generator, streams: int, days: int, per_day: int, lift: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Daily looks at ``streams`` simulated experiments: for each look the CTR lift's estimate
    and standard error (cumulative data), shape (streams, days). Units see 1 + Poisson(3)
    impressions and click at a unit-specific rate (Beta(2, 38), mean 5 %): clustered clicks,
    so an impression-level test would be wrong and the delta method is needed."""
    out = []
    for arm_lift in (0.0, lift):
        shape = (streams, days, per_day)
        imp = 1 + rng.poisson(3, shape).astype(float)
        rate = np.minimum(rng.beta(2, 38, shape) * (1 + arm_lift), 1.0)
        clk = rng.binomial(imp.astype(int), rate).astype(float)
        sums = [
            np.cumsum(a.sum(axis=2), axis=1) for a in (clk, imp, clk * clk, imp * imp, clk * imp)
        ]
        n = per_day * np.arange(1, days + 1, dtype=float)
        out.append(stats.ratio_estimate(n, *sums))
    (c, se_c), (t, se_t) = out
    lift_hat, se, _ = stats.relative_lift(t, se_t, c, se_c)
    return lift_hat, se


def test_daily_looks_at_the_sequential_p_value_keep_false_positives_at_alpha() -> None:
    rng = np.random.default_rng(20260513)
    streams = 500
    lift, se = _aa_streams(rng, streams, days=14, per_day=300)
    sequential = (stats.msprt_p(lift, se) <= 0.05).any(axis=1).mean()
    naive = (2 * (1 - np.vectorize(PHI.cdf)(np.abs(lift / se))) <= 0.05).any(axis=1).mean()
    bound = 0.05 + 1.96 * math.sqrt(0.05 * 0.95 / streams)  # binomial 95 % upper limit
    assert sequential <= bound
    assert naive > bound  # peeking daily at a fixed-horizon test inflates false positives
    assert naive > 2 * sequential


def test_the_sequential_p_value_still_detects_a_real_lift() -> None:
    rng = np.random.default_rng(7)
    lift, se = _aa_streams(rng, 100, days=7, per_day=2000, lift=0.15)
    assert (stats.msprt_p(lift, se) <= 0.05).any(axis=1).mean() > 0.8
