"""Equal-mass buckets of a training distribution, and the PSI of later values over the same cuts.

Shared by score drift (``monitoring.scores``) and feature drift (``monitoring.features``): both
keep, at training, the nine inner decile cuts of a sample and the count in each bucket, and later
bucket what serving saw at those very cuts. Cuts that tie merge (a feature that is 0 for most
rows has fewer buckets), and a value equal to a cut counts above it, so a categorical code sits
in a bucket of its own. A value that is missing (NaN) can have a bucket of its own too
(``missing``): a feature going missing more often is drift as much as its values moving.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsmith.monitoring.divergence import psi

BUCKETS = 10


def cuts(values: np.ndarray) -> np.ndarray:
    """The inner decile cuts of the finite ``values`` (ties merged; empty when there are none)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.empty(0)
    return np.unique(np.quantile(finite, np.arange(1, BUCKETS) / BUCKETS))


def bucket_counts(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How many finite ``values`` fall in each of the ``len(edges) + 1`` buckets."""
    finite = values[np.isfinite(values)]
    return np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)


def decile_profile(values: np.ndarray) -> dict[str, Any]:
    """``edges`` (the cuts), ``counts`` (finite values per bucket) and ``missing`` (NaN values)
    of ``values``; infinities are neither (a short list's padding is not a score)."""
    values = np.asarray(values, dtype=np.float64)
    edges = cuts(values)
    return {
        "edges": edges.tolist(),
        "counts": bucket_counts(edges, values).tolist(),
        "missing": int(np.isnan(values).sum()),
    }


def decile_psi(profile: dict[str, Any], values: np.ndarray) -> float | None:
    """PSI of ``values`` against ``profile`` over its buckets, plus the missing one when the
    profile counts missing values (None: no mass on one side)."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.asarray(profile["edges"], dtype=np.float64)
    expected = np.asarray(profile["counts"], np.float64)
    actual = bucket_counts(edges, values).astype(np.float64)
    if "missing" in profile:
        expected = np.append(expected, profile["missing"])
        actual = np.append(actual, np.isnan(values).sum())
    if expected.sum() <= 0 or actual.sum() <= 0:
        return None
    return psi(expected, actual)
