"""The report's serving guardrails against hand-computed values: p99 latency per variant (the
oracle: ``numpy.percentile`` on the same list, and the interpolation worked out by hand) and the
error rate per variant (a two-proportion z-test and an Agresti–Caffo interval computed here)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from recsmith.experiments import stats
from recsmith.experiments.report import MIN_LATENCIES, Thresholds, build_report
from recsmith.experiments.spec import Experiment, Variant

EXP = Experiment("ab", (Variant("control", "v1", 50), Variant("treatment", "v2", 50)), salt="ab:s")
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def _per_unit() -> pd.DataFrame:
    """Two identical arms of 50 units: the outcome metrics decide nothing here."""
    rows = [
        (f"{v}-{i}", v, 1, 5, i % 2, 0, 0, 0.0, pd.Timestamp("2026-01-01", tz="UTC"))
        for v in ("control", "treatment")
        for i in range(50)
    ]
    columns = ["unit", "variant", "decisions", "impressions", "clicks", "carts", "purchases"]
    return pd.DataFrame(rows, columns=[*columns, "revenue", "first_seen"])


def _guard(report, name: str):  # type: ignore[no-untyped-def]
    return next(g for g in report.guardrails if g.name == name)


def _latencies(control: np.ndarray, treatment: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "variant": ["control"] * len(control) + ["treatment"] * len(treatment),
            "latency_ms": np.r_[control, treatment],
        }
    )


# ---- p99 latency --------------------------------------------------------------------------------


def test_p99_latency_fails_when_only_a_variants_slowest_requests_are_slow() -> None:
    control = np.arange(1.0, 201.0)  # 1 ms .. 200 ms
    treatment = control.copy()
    treatment[-3:] *= 5  # its three slowest: 990, 995, 1000 ms; every other one as control's
    # by hand: rank 0.99 * 199 = 197.01, between the sorted values at 0-based 197 and 198
    p99_c = 198 + 0.01 * (199 - 198)
    p99_t = 990 + 0.01 * (995 - 990)
    assert np.percentile(control, 99) == p99_c and np.percentile(treatment, 99) == p99_t
    guard = _guard(build_report(EXP, _per_unit(), _latencies(control, treatment)), "p99_latency")
    assert guard.status == "fail"
    assert guard.detail.startswith(f"{p99_t:.1f} ms vs control {p99_c:.1f} ms (limit")
    assert f"limit {p99_c * 1.1:.1f}" in guard.detail


def test_p99_latency_passes_within_the_margin_and_fails_beyond_it() -> None:
    rng = np.random.default_rng(3)
    control = rng.lognormal(2.0, 0.5, 5000)
    for factor, expected in ((1.09, "pass"), (1.11, "fail")):
        treatment = control * factor  # p99 scales with every latency
        report = build_report(EXP, _per_unit(), _latencies(control, treatment))
        guard = _guard(report, "p99_latency")
        assert guard.status == expected, (factor, guard.detail)
        want = np.percentile(treatment, 99)
        assert guard.detail.startswith(f"{want:.1f} ms vs control {np.percentile(control, 99):.1f}")
    # a tighter margin turns the 9 % slower variant into a failure
    tight = Thresholds(latency_margin=0.05)
    slow = _latencies(control, control * 1.09)
    assert _guard(build_report(EXP, _per_unit(), slow, tight), "p99_latency").status == "fail"


def test_p99_latency_waits_for_enough_timed_decisions() -> None:
    few = np.full(MIN_LATENCIES - 1, 500.0)  # very slow, yet too few to judge a p99 on
    guard = _guard(build_report(EXP, _per_unit(), _latencies(np.ones(1000), few)), "p99_latency")
    assert guard.status == "pending" and f"{MIN_LATENCIES - 1} and 1000" in guard.detail
    guard = _guard(build_report(EXP, _per_unit(), None), "p99_latency")
    assert guard.status == "not recorded"


# ---- error rate ---------------------------------------------------------------------------------


def _requests(n_c: int, e_c: int, n_t: int, e_t: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"variant": ["control", "treatment"], "requests": [n_c, n_t], "errors": [e_c, e_t]}
    )


def _by_hand(e_t: int, n_t: int, e_c: int, n_c: int) -> tuple[float, float, float, float]:
    """Difference, Agresti–Caffo 95 % interval, two-sided pooled z-test p."""
    d = e_t / n_t - e_c / n_c
    pooled = (e_t + e_c) / (n_t + n_c)
    z = d / math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p = math.erfc(abs(z) / math.sqrt(2))
    at, ac = (e_t + 1) / (n_t + 2), (e_c + 1) / (n_c + 2)
    se = math.sqrt(at * (1 - at) / (n_t + 2) + ac * (1 - ac) / (n_c + 2))
    return d, at - ac - Z95 * se, at - ac + Z95 * se, p


def test_the_rate_difference_is_the_two_proportion_test_worked_by_hand() -> None:
    for counts in ((200, 10_000, 10, 10_000), (60, 20_000, 20, 20_000), (1, 100, 0, 100)):
        got = stats.rate_difference(*counts)
        d, lo, hi, p = _by_hand(*counts)
        assert math.isclose(got.difference, d, rel_tol=1e-12)
        assert math.isclose(got.ci[0], lo, rel_tol=1e-9) and math.isclose(
            got.ci[1], hi, rel_tol=1e-9
        )
        assert math.isclose(got.p, p, rel_tol=1e-6, abs_tol=1e-300)


def test_the_error_rate_guardrail_fails_a_variant_that_fails_more() -> None:
    # control 0.1 %, treatment 2 %: 1.9 points worse, far beyond the 0.5-point margin
    report = build_report(EXP, _per_unit(), None, requests=_requests(10_000, 10, 10_000, 200))
    guard = _guard(report, "error_rate")
    assert guard.status == "fail", guard.detail
    assert guard.detail.startswith("200/10000 = 2.00% vs control 10/10000 = 0.10%: +1.90 pp")
    assert report.verdicts[0].startswith("stop treatment: guardrail error_rate failed")


def test_the_error_rate_guardrail_passes_within_the_margin() -> None:
    same = _requests(10_000, 5, 10_000, 5)
    assert (
        _guard(build_report(EXP, _per_unit(), None, requests=same), "error_rate").status == "pass"
    )
    # 0.2 points worse, and significantly so (p < 0.05 by hand), but inside the 0.5-point margin
    worse = _requests(20_000, 20, 20_000, 60)
    assert _by_hand(60, 20_000, 20, 20_000)[3] < 0.05
    report = build_report(EXP, _per_unit(), None, requests=worse)
    assert _guard(report, "error_rate").status == "pass"
    # the margin is the operator's: at 0.1 point the same counts fail
    strict = build_report(EXP, _per_unit(), None, Thresholds(error_margin=0.001), worse)
    assert _guard(strict, "error_rate").status == "fail"


def test_the_error_rate_guardrail_waits_while_too_few_requests_decide() -> None:
    few = _requests(100, 0, 100, 1)  # interval [-2.4, +4.3] points: neither inside nor beyond
    assert _guard(build_report(EXP, _per_unit(), None, requests=few), "error_rate").status == (
        "pending"
    )
    # significantly worse (p = 0.02 by hand) but by 0.4 points, inside the margin, while the
    # interval still reaches past it: more requests will tell
    close = _requests(2000, 2, 2000, 10)
    d, _, hi, p = _by_hand(10, 2000, 2, 2000)
    assert p < 0.05 and d < 0.005 < hi
    assert _guard(build_report(EXP, _per_unit(), None, requests=close), "error_rate").status == (
        "pending"
    )
    none_yet = pd.DataFrame({"variant": ["control"], "requests": [10], "errors": [0]})
    guard = _guard(build_report(EXP, _per_unit(), None, requests=none_yet), "error_rate")
    assert guard.status == "pending" and guard.detail == "no requests yet"
    assert _guard(build_report(EXP, _per_unit()), "error_rate").status == "not recorded"
