"""Paired tests, bootstrap intervals and Holm's correction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from recsmith.evaluation import significance
from recsmith.evaluation.significance import (
    PairedResult,
    bootstrap_ci,
    holm_correction,
    paired_sample_size,
    paired_test,
)


def test_identical_vectors_show_no_difference() -> None:
    a = np.array([0.0, 0.5, 1.0, 0.25, 0.0])
    assert paired_test(a, a.copy()) == PairedResult(0.0, 0.0, 0.0, 1.0, "paired t-test", 1.0)


def test_paired_test_by_hand() -> None:
    # diffs [1, 0.5, 0.8]: mean 0.7667, sd sqrt((0.2333^2 + 0.2667^2 + 0.0333^2) / 2) = 0.25166,
    # se = 0.25166 / sqrt(3) = 0.14530, t = 5.2766 on 2 df -> p = 0.0341;
    # 95% CI = 0.7667 +- t_0.975,2 (4.3027) * 0.14530 = (0.1415, 1.3918).
    # Wilcoxon, exact: all 3 signs positive, P(W = max) = 1 / 2^3, two-sided p = 0.25.
    result = paired_test(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.5, 2.2]))
    assert result.mean_diff == pytest.approx(0.76667, abs=1e-4)
    assert result.p_value == pytest.approx(0.0341, abs=1e-4)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.1415, 1.3918), abs=1e-4)
    assert result.wilcoxon_p_value == pytest.approx(0.25)
    assert result.test_name == "paired t-test"


def test_a_clearly_shifted_vector_is_significant() -> None:
    rng = np.random.default_rng(0)
    b = rng.random(300)  # per-user metric of the baseline
    a = b + 0.1 + rng.normal(0, 0.05, 300)  # the same users, 0.1 better with a little noise
    result = paired_test(a, b)
    assert result.p_value < 0.01 and result.wilcoxon_p_value < 0.01
    assert result.ci_low < 0.1 < result.ci_high and result.ci_low > 0
    assert paired_test(b, a).mean_diff == pytest.approx(-result.mean_diff)


def test_paired_test_degenerate_and_bad_inputs() -> None:
    const = paired_test(np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.5, 2.5]))  # always +0.5
    assert (const.mean_diff, const.ci_low, const.ci_high, const.p_value) == (0.5, 0.5, 0.5, 0.0)
    for a, b in [
        (np.ones(3), np.ones(4)),  # not paired
        (np.array([1.0, np.nan]), np.ones(2)),  # undefined user left in
        (np.ones(1), np.zeros(1)),  # one user: no variance
    ]:
        with pytest.raises(ValueError):
            paired_test(a, b)


#: Per-user metric values and differences as evaluation produces them: many ties (NDCG of 0, 1,
#: a few repeated fractions) and many users with no difference at all.
METRIC = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0]) | st.floats(0, 1)
DIFF = st.sampled_from([0.0, 0.0, 0.0, 0.1, -0.1, 0.25]) | st.floats(-0.5, 0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(METRIC, DIFF), min_size=2, max_size=40))
def test_paired_test_interval_holds_the_mean_and_p_is_a_probability(
    pairs: list[tuple[float, float]],
) -> None:
    """Differences drawn independently of the baseline, with ties and zeros."""
    base = np.array([b for b, _ in pairs])
    a = base + np.array([d for _, d in pairs])
    diff = a - base
    result = paired_test(a, base)
    assert 0.0 <= result.p_value <= 1.0 and 0.0 <= result.wilcoxon_p_value <= 1.0
    assert result.ci_low <= result.mean_diff + 1e-9 and result.mean_diff <= result.ci_high + 1e-9
    assert result.mean_diff == pytest.approx(float(np.mean(diff)), abs=1e-12)
    if not diff.any():  # no user differs: no evidence of a difference
        assert result.p_value == 1.0 and result.wilcoxon_p_value == 1.0
    elif np.ptp(diff) > 0:  # the one-sample t-test on the differences is the paired t-test
        expected = stats.ttest_1samp(diff, 0.0).pvalue
        assert result.p_value == pytest.approx(expected, rel=1e-6, abs=1e-12)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_ci_contains_the_mean_and_narrows_with_n() -> None:
    rng = np.random.default_rng(1)
    values = rng.exponential(1.0, 4000)
    widths = []
    for n in (250, 4000):
        low, high = bootstrap_ci(values[:n], seed=2)
        assert low < values[:n].mean() < high
        widths.append(high - low)
    # The width shrinks like 1 / sqrt(n): 16x the users, about a quarter of the width.
    assert widths[1] < widths[0] / 3
    # Close to the normal interval 2 * 1.96 * sd / sqrt(n) for this many users.
    assert widths[1] == pytest.approx(2 * 1.96 * values.std() / math.sqrt(4000), rel=0.1)


def test_bootstrap_ci_is_reproducible_and_chunks_do_not_change_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = np.random.default_rng(3).random(500)
    first = bootstrap_ci(values, confidence=0.9, n_resamples=300, seed=4)
    assert first == bootstrap_ci(values, confidence=0.9, n_resamples=300, seed=4)
    assert first != bootstrap_ci(values, confidence=0.9, n_resamples=300, seed=5)
    monkeypatch.setattr(significance, "_BOOTSTRAP_CELLS", 1700)  # 3 resamples per chunk
    assert bootstrap_ci(values, confidence=0.9, n_resamples=300, seed=4) == first


def test_bootstrap_ci_edges() -> None:
    assert bootstrap_ci(np.array([0.3])) == (0.3, 0.3)
    for bad in ({"values": np.array([])}, {"confidence": 1.0}, {"n_resamples": 0}):
        kwargs = {"values": np.array([0.1, 0.2]), **bad}
        with pytest.raises(ValueError):
            bootstrap_ci(**kwargs)


# ---------------------------------------------------------------- Holm


def test_holm_correction_by_hand() -> None:
    # Sorted: 0.005 * 4 = 0.02, 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 -> max so far
    # 0.06. Back in input order [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02].
    adjusted = holm_correction(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm_correction(np.array([0.5, 0.6])), [1.0, 1.0])  # capped at 1
    assert holm_correction(np.array([])).size == 0
    with pytest.raises(ValueError):
        holm_correction(np.array([0.1, 1.2]))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_holm_lies_between_raw_and_bonferroni(p: list[float]) -> None:
    raw = np.array(p)
    adjusted = holm_correction(raw)
    assert (adjusted >= raw - 1e-12).all()
    assert (adjusted <= np.minimum(1.0, raw * len(raw)) + 1e-12).all()
    order = np.argsort(raw, kind="stable")
    assert (np.diff(adjusted[order]) >= 0).all()  # adjusted p-values keep the raw order


def test_paired_sample_size_by_hand() -> None:
    # diffs [0.3, -0.1, 0.1, 0.1]: mean 0.1, sd sqrt((0.2^2 + 0.2^2) / 3) = 0.163299;
    # z_0.975 + z_0.8 = 1.959964 + 0.841621 = 2.801585;
    # n = (2.801585 * 0.163299 / 0.1)^2 = 7.848879 * 2.666667 = 20.93 -> 21 users.
    assert paired_sample_size(np.array([0.3, -0.1, 0.1, 0.1])) == 21
    # a tenth of the spread needs a hundredth of the users: (2.801585 * 0.0163299 / 0.1)^2 -> 1
    # rounds up to the 2 any paired test needs
    assert paired_sample_size(np.array([0.12, 0.08, 0.1, 0.1])) == 2
    assert paired_sample_size(np.array([0.1, -0.1])) is None  # no difference to detect
    assert paired_sample_size(np.array([0.1, 0.1])) == 2  # a constant difference is certain
    with pytest.raises(ValueError, match="at least 2"):
        paired_sample_size(np.array([0.1]))
