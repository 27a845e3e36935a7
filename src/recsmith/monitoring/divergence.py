"""Distances between two distributions over the same categories: PSI and Jensen–Shannon.

Both take *counts* (not shares) so that a caller never normalises twice, and both smooth empty
cells: a category absent on one side would otherwise make PSI infinite, which says nothing more
useful than "large" and breaks a gauge. The smoothing (``EPS`` of a share) is the usual one in
credit-risk PSI tables; it matters only for categories with no mass on one side.
"""

from __future__ import annotations

import numpy as np

#: Share given to an empty cell before the logarithms (then the shares are renormalised).
EPS = 1e-4


def shares(counts: np.ndarray) -> np.ndarray:
    """``counts`` as shares summing to 1, empty cells lifted to ``EPS`` first."""
    total = float(np.sum(counts))
    if total <= 0:
        raise ValueError("no mass: a distribution needs at least one count")
    p = np.maximum(np.asarray(counts, dtype=np.float64) / total, EPS)
    return p / p.sum()


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index Σ (a − e)·ln(a / e) over the categories: 0 for no shift;
    by convention < 0.1 stable, 0.1–0.25 a moderate shift, > 0.25 a large one."""
    e, a = shares(expected), shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen–Shannon divergence in bits (0 = same distribution, 1 = disjoint supports);
    symmetric and bounded, unlike KL, so one threshold fits every signal."""
    p, q = shares(p_counts), shares(q_counts)
    m = 0.5 * (p + q)
    return float(0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m)))
