"""The experiment report on hand-built ``per_unit`` frames: the verdict follows the data, the
SRM check and the guardrails trip when they should, and --json's line holds what the issue
names."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsmith.experiments import stats
from recsmith.experiments.report import Thresholds, build_report, text_lines, write_html
from recsmith.experiments.spec import Experiment, Variant

EXP = Experiment("ab", (Variant("control", "v1", 50), Variant("treatment", "v2", 50)), salt="ab:s")


def _units(rng: np.random.Generator, n: int, variant: str, ctr: float, buy: float, value: float):
    imp = 1 + rng.poisson(4, n)
    clicks = rng.binomial(imp, ctr)
    purchases = rng.binomial(1, buy, n)
    return pd.DataFrame(
        {
            "unit": [f"{variant}-{i}" for i in range(n)],
            "variant": variant,
            "decisions": imp,
            "impressions": imp,
            "clicks": clicks,
            "carts": 0,
            "purchases": purchases,
            "revenue": purchases * value,
            "first_seen": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )


def _frame(n_c: int, n_t: int, ctr_t: float, value_t: float = 20.0, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.concat(
        [
            _units(rng, n_c, "control", 0.05, 0.1, 20.0),
            _units(rng, n_t, "treatment", ctr_t, 0.1, value_t),
        ],
        ignore_index=True,
    )


def test_a_clear_lift_says_promote_with_its_interval() -> None:
    frame = _frame(20_000, 20_000, 0.06)
    report = build_report(EXP, frame)
    (verdict,) = report.verdicts
    assert verdict.startswith("promote treatment: +")
    ctr = next(c for c in report.comparisons if c.metric == "ctr")
    # the oracle: totals by hand
    by = frame.groupby("variant")[["clicks", "impressions"]].sum()
    true_ratio = (by.clicks / by.impressions)["treatment"] / (by.clicks / by.impressions)["control"]
    assert ctr.lift == pytest.approx(true_ratio - 1)
    assert ctr.ci[0] < ctr.lift < ctr.ci[1] and ctr.ci[0] > 0
    assert f"{ctr.lift:+.1%}" in verdict


def test_too_little_data_says_how_many_more_units() -> None:
    report = build_report(EXP, _frame(300, 300, 0.05))
    (verdict,) = report.verdicts
    assert verdict.startswith("keep running: treatment: ")
    more = int(verdict.split(": ")[2].split()[0])
    summary = stats.summarize(_frame(300, 300, 0.05))
    c, t = summary["control"]["ctr"], summary["treatment"]["ctr"]
    # the oracle: (z_.975 + z_.8)^2 (sigma_c^2 + sigma_t^2) / (mde * ctr_c)^2 per arm, minus 300
    # per arm, over a half share
    sigma2 = 300 * c.se**2 + 300 * t.se**2
    per_arm = math.ceil((1.959964 + 0.841621) ** 2 * sigma2 / (0.05 * c.value) ** 2)
    assert more == pytest.approx((per_arm - 300) * 2, abs=2)


def test_an_unbalanced_split_is_called_out_before_any_lift() -> None:
    report = build_report(EXP, _frame(10_000, 9_000, 0.08))
    assert report.srm_p < 1e-6
    assert "sample ratio mismatch" in report.verdicts[0]


def test_the_revenue_guardrail_fails_when_revenue_drops() -> None:
    report = build_report(EXP, _frame(20_000, 20_000, 0.06, value_t=15.0), None, Thresholds())
    guard = next(g for g in report.guardrails if g.name == "revenue_per_unit")
    assert guard.status == "fail"
    assert report.verdicts[0].startswith("stop treatment: guardrail revenue_per_unit failed")


def test_the_latency_guardrail_compares_p99s() -> None:
    rng = np.random.default_rng(3)
    latencies = pd.DataFrame(
        {
            "variant": ["control"] * 1000 + ["treatment"] * 1000,
            "latency_ms": np.r_[rng.uniform(1, 10, 1000), rng.uniform(1, 20, 1000)],
        }
    )
    report = build_report(EXP, _frame(2000, 2000, 0.05), latencies)
    guard = next(g for g in report.guardrails if g.name == "p99_latency")
    assert guard.status == "fail"  # ~19.8 ms against ~9.9 ms * 1.1
    latencies.loc[latencies.variant == "treatment", "latency_ms"] /= 2
    report = build_report(EXP, _frame(2000, 2000, 0.05), latencies)
    assert next(g for g in report.guardrails if g.name == "p99_latency").status == "pass"
    unknown = build_report(EXP, _frame(2000, 2000, 0.05))
    assert next(g for g in unknown.guardrails if g.name == "p99_latency").status == "not recorded"


def test_json_holds_variants_srm_and_comparisons_and_html_is_one_page(tmp_path: Path) -> None:
    report = build_report(EXP, _frame(2000, 2000, 0.05))
    line = json.loads(json.dumps(report.to_json()))
    assert set(line["variants"]) == {"control", "treatment"}
    assert {"units", "impressions", "clicks", "ctr", "ctr_ci"} <= set(line["variants"]["control"])
    assert 0 <= line["srm_p"] <= 1
    first = line["comparisons"][0]
    assert {"metric", "variant", "control", "lift", "ci", "p"} <= set(first)
    assert len(first["ci"]) == 2
    assert any("always-valid" in x for x in text_lines(report))
    page = write_html(report, tmp_path / "r.html").read_text()
    assert "<style>" in page and "http" not in page.replace("http-equiv", "")
    assert report.verdicts[0] in page or report.verdicts[0].split(":")[0] in page


def test_an_empty_experiment_reports_no_units_rather_than_failing() -> None:
    empty = _frame(0, 0, 0.05)
    report = build_report(EXP, empty)
    assert report.verdicts == ["treatment: keep running: no impressions yet"]
    assert report.to_json()["srm_p"] == 1.0


def test_a_variant_with_one_unit_keeps_running_instead_of_claiming_no_difference() -> None:
    # the README walkthrough's first minute: 5 control users, 1 treatment user. One unit has no
    # variance, so no interval exists, and "no significant difference ... a 5% lift would show"
    # (what this said before) claims a power the data cannot have
    report = build_report(EXP, _frame(5, 1, 0.05))
    assert report.verdicts == [
        "keep running: treatment: too few units for an interval (5 control, 1 treatment; "
        "needs at least 2 each)"
    ]
    revenue = next(g for g in report.guardrails if g.name == "revenue_per_unit")
    assert (revenue.status, revenue.detail) == ("pending", "too few units for an interval")
