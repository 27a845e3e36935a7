"""The bootstrap's Poisson(1) counts have Poisson(1) frequencies."""

from __future__ import annotations

import math

import numpy as np

from recsmith.ope.bootstrap import poisson_one_counts


def test_counts_follow_the_poisson_one_pmf() -> None:
    counts = poisson_one_counts(np.random.default_rng(0), (400, 5000))  # 2M draws
    frequencies = np.bincount(counts.astype(np.int64).ravel(), minlength=6)[:6] / counts.size
    pmf = np.array([math.exp(-1) / math.factorial(k) for k in range(6)])
    # binomial standard error of a frequency over 2M draws is at most 3.5e-4
    np.testing.assert_allclose(frequencies, pmf, atol=1.5e-3)
    assert abs(counts.mean() - 1) < 3e-3 and abs(counts.var() - 1) < 5e-3
