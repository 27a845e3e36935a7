"""Percentile intervals for ratio estimators by a Poisson bootstrap over rounds.

Each replicate gives every round an independent Poisson(1) count (Hanley & MacGibbon 2006;
the large-n limit of the multinomial bootstrap), so a replicate of Σ num / Σ den is
(W @ num) / (W @ den) for a matrix W of counts: all estimators and all replicates of a chunk in
one matrix product, no loop over replicates beyond chunks that bound the memory."""

from __future__ import annotations

import math
import warnings

import numpy as np

#: P(X ≤ k) for X ~ Poisson(1), k = 0 … 10, in float32 (what the uniforms are compared with).
_POISSON_ONE_CDF = np.cumsum(
    [np.exp(-1.0) / math.factorial(k) for k in range(11)], dtype=np.float64
).astype(np.float32)

#: Counts held in memory at once (replicates × rounds): about 180 MB of uniforms, uint8 and
#: float32 counts.
CHUNK_CELLS = 20_000_000


def percentile_intervals(
    num: np.ndarray, den: np.ndarray, *, replicates: int, seed: int, level: float = 0.95
) -> np.ndarray:
    """``(estimators, 2)`` lower and upper bounds for each row of ``num`` / ``den``, each
    ``(estimators, rounds)``. A replicate whose denominator is 0 (possible only for tiny logs)
    is dropped."""
    rng = np.random.default_rng(seed)
    n_rounds = num.shape[1]
    # float32 products: rounding is ~1e-7 of a term, far below the sampling error being measured
    num32, den32 = num.T.astype(np.float32), den.T.astype(np.float32)
    chunk = max(1, min(replicates, CHUNK_CELLS // max(n_rounds, 1)))
    values = []
    for start in range(0, replicates, chunk):
        counts = poisson_one_counts(rng, (min(chunk, replicates - start), n_rounds))
        top, bottom = (counts @ num32).astype(np.float64), (counts @ den32).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            values.append(top / bottom)
    draws = np.concatenate(values)  # (replicates, estimators)
    alpha = (1 - level) / 2
    with warnings.catch_warnings():  # an estimator undefined in every replicate stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanquantile(draws, [alpha, 1 - alpha], axis=0).T


def poisson_one_counts(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) counts by inversion: the count is how many CDF steps a float32 uniform
    exceeds. Several times faster than ``rng.poisson`` (the bootstrap's cost at 1M rows);
    exact but for counts above 10 or in the last float32 step below 1, whose probability is
    under 1e-7 together."""
    uniform = rng.random(shape, dtype=np.float32)
    counts = np.zeros(shape, dtype=np.uint8)
    for step in _POISSON_ONE_CDF:
        counts += uniform > step
    return counts.astype(np.float32)
