"""Is model A really better than model B? Paired tests, bootstrap intervals, Holm correction.

Two models evaluated on the same users give paired per-user metric vectors
(``ModelResult.per_user``). Pairing removes the large user-to-user variance (some users are easy
for every model), so a paired test detects differences an unpaired comparison of means would
miss. Comparing the best model with several others is several tests at once; ``holm_correction``
keeps the chance of any false "better" at the nominal level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

_BOOTSTRAP_CELLS = 1 << 22  # resample indices held at once (32 MiB of int64)


@dataclass(frozen=True, slots=True)
class PairedResult:
    """Mean of ``a - b``, its t confidence interval, and two-sided p-values.

    ``p_value`` is the paired t-test's (the headline: it tests the mean, which is what is
    reported); ``wilcoxon_p_value`` is the signed-rank test's, which makes no normality assumption
    and is the safer read for skewed per-user metrics such as MRR.
    """

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test_name: str
    wilcoxon_p_value: float


def _vector(values: np.ndarray, name: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name} holds NaN or inf; drop undefined users from both vectors first")
    return out


def paired_test(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedResult:
    """Paired t-test (``scipy.stats.ttest_rel``) and Wilcoxon signed-rank test of ``a`` vs ``b``.

    ``a[u]`` and ``b[u]`` must be the same user's metric under two models. Degenerate cases that
    scipy answers with NaN are decided here: all differences zero means no evidence of any
    difference (p = 1 for both tests); a constant non-zero difference is certain (t-test p = 0,
    interval collapsed on it). At least two users are needed to estimate a variance.
    """
    a, b = _vector(a, "a"), _vector(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair the same users, got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a paired test needs at least 2 users, got {len(a)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diff = a - b
    mean = float(diff.mean())
    if not diff.any():
        return PairedResult(0.0, 0.0, 0.0, 1.0, "paired t-test", 1.0)
    wilcoxon_p = float(stats.wilcoxon(diff).pvalue)  # zeros dropped ("wilcox" zero method)
    if np.ptp(diff) == 0:
        return PairedResult(mean, mean, mean, 0.0, "paired t-test", wilcoxon_p)
    result = stats.ttest_rel(a, b)
    interval = result.confidence_interval(confidence_level=confidence)
    return PairedResult(
        mean_diff=mean,
        ci_low=float(interval.low),
        ci_high=float(interval.high),
        p_value=float(result.pvalue),
        test_name="paired t-test",
        wilcoxon_p_value=wilcoxon_p,
    )


def paired_sample_size(diff: np.ndarray, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Users a two-sided paired test needs to detect the mean of ``diff`` at level ``alpha`` with
    the given ``power``, if the per-user differences keep the spread observed here.

    ``n = ceil(((z_{1-alpha/2} + z_{power}) * s_d / mean_d) ** 2)`` with ``s_d`` the sample standard
    deviation of the differences: the normal-approximation sample size for a paired comparison
    (Chow, Shao & Wang, *Sample Size Calculations in Clinical Research*, 2nd ed., 2008, §3.1;
    Cohen's d_z = mean_d / s_d). It slightly understates what a t-test needs below ~30 users,
    which is harmless for its use here: saying that an evaluation was too small to separate two
    models, and by how much. ``None`` when the mean difference is zero (no spread to detect);
    2 when every difference is the same non-zero value (two users estimate it exactly).
    """
    d = _vector(diff, "diff")
    if len(d) < 2:
        raise ValueError(f"a sample size needs at least 2 paired differences, got {len(d)}")
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha} and {power}")
    mean = float(d.mean())
    if mean == 0.0:
        return None
    spread = float(d.std(ddof=1))
    z = stats.norm.ppf(1.0 - alpha / 2) + stats.norm.ppf(power)
    return max(2, math.ceil((z * spread / mean) ** 2))


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of ``values`` (seeded, reproducible).

    Resamples are drawn in chunks of at most ``_BOOTSTRAP_CELLS`` indices, so a million users
    never needs a [n_resamples, n] index matrix in memory. Unlike the t interval it assumes no
    normality of the mean, which matters for heavy-tailed per-user metrics on few users.
    """
    data = _vector(values, "values")
    if len(data) == 0:
        raise ValueError("values is empty: no mean to bound")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    n = len(data)
    chunk = max(1, _BOOTSTRAP_CELLS // n)
    means = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        means[start : start + size] = data[rng.integers(0, n, size=(size, n))].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def holm_correction(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    With p-values sorted ascending, ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` (j from 1).
    Reject hypothesis i at level alpha where ``adj_i <= alpha``: this controls the family-wise
    error rate like Bonferroni, under any dependence, while rejecting at least as often.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("p_values must lie in [0, 1]")
    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


@dataclass(frozen=True, slots=True)
class TwoSampleResult:
    """Mean of ``a`` minus mean of ``b`` (different users), Welch's t interval and p-value, and
    the users per group a test would need to detect that difference (``None`` when it is 0)."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    users_needed: int | None


def two_sample_test(
    a: np.ndarray, b: np.ndarray, confidence: float = 0.95, power: float = 0.8
) -> TwoSampleResult:
    """Welch's t-test (``scipy.stats.ttest_ind``, unequal variances) of two groups of users.

    Groups of different users are not paired, so ``paired_test`` does not apply. The users-needed
    figure is the normal-approximation size per group for a two-sided test at
    ``1 - confidence`` with ``power``: ``n = ceil((z_{1-α/2} + z_power)^2 (s_a^2 + s_b^2) / Δ^2)``
    (Chow, Shao & Wang 2008, §3.2, unequal variances). Each group needs two users for a variance.
    """
    a, b = _vector(a, "a"), _vector(b, "b")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(
            f"a two-sample test needs at least 2 users per group, got {len(a)}, {len(b)}"
        )
    if not 0.0 < confidence < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"confidence and power must be in (0, 1), got {confidence}, {power}")
    diff = float(a.mean() - b.mean())
    spread = float(a.var(ddof=1) + b.var(ddof=1))
    z = stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power)
    needed = None if diff == 0.0 else max(2, math.ceil(z * z * spread / diff**2))
    if spread == 0.0:  # both groups constant: the difference is exact
        return TwoSampleResult(diff, diff, diff, 1.0 if diff == 0.0 else 0.0, needed)
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(confidence_level=confidence)
    return TwoSampleResult(
        diff, float(interval.low), float(interval.high), float(result.pvalue), needed
    )
