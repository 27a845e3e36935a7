"""Percentile intervals for ratio estimators by a Poisson bootstrap over rounds.

Each replicate gives every round an independent Poisson(1) count (Hanley & MacGibbon 2006;
the large-n limit of the multinomial bootstrap), so a replicate of Σ num / Σ den is
(W @ num) / (W @ den) for a matrix W of counts: all estimators and all replicates of a chunk in
one matrix product, no loop over replicates beyond chunks that bound the memory."""

from __future__ import annotations

import numpy as np

#: Counts held in memory at once (replicates × rounds), about 160 MB of float64.
CHUNK_CELLS = 20_000_000


def percentile_intervals(
    num: np.ndarray, den: np.ndarray, *, replicates: int, seed: int, level: float = 0.95
) -> np.ndarray:
    """``(estimators, 2)`` lower and upper bounds for each row of ``num`` / ``den``, each
    ``(estimators, rounds)``. A replicate whose denominator is 0 (possible only for tiny logs)
    is dropped."""
    rng = np.random.default_rng(seed)
    n_rounds = num.shape[1]
    chunk = max(1, min(replicates, CHUNK_CELLS // max(n_rounds, 1)))
    values = []
    for start in range(0, replicates, chunk):
        counts = rng.poisson(1.0, size=(min(chunk, replicates - start), n_rounds)).astype(
            np.float64
        )
        top, bottom = counts @ num.T, counts @ den.T
        with np.errstate(divide="ignore", invalid="ignore"):
            values.append(top / bottom)
    draws = np.concatenate(values)  # (replicates, estimators)
    alpha = (1 - level) / 2
    return np.nanquantile(draws, [alpha, 1 - alpha], axis=0).T
