"""TopK, the hot-path currency between models and everything after them, and the top-k kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TopK:
    """Best items per query: internal item indices (-1 padded) and their scores (-inf padded)."""

    ids: np.ndarray  # int32 [n_queries, k]
    scores: np.ndarray  # float32 [n_queries, k]

    def __post_init__(self) -> None:
        if self.ids.shape != self.scores.shape or self.ids.ndim != 2:
            raise ValueError(
                f"TopK ids {self.ids.shape} and scores {self.scores.shape} must be equal 2-D"
            )


def top_k(scores: np.ndarray, k: int) -> TopK:
    """Top ``k`` columns of each row, best first; entries at -inf are padding (-1), never returned.

    ``argpartition`` then a sort of only ``k`` columns: O(n_items + k log k) per row, vectorised.
    """
    n_rows, n_cols = scores.shape
    k_eff = min(k, n_cols)
    if k_eff <= 0:
        return TopK(
            np.full((n_rows, max(k, 0)), -1, np.int32),
            np.full((n_rows, max(k, 0)), -np.inf, np.float32),
        )
    part = (
        np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
        if k_eff < n_cols
        else np.tile(np.arange(n_cols), (n_rows, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    best = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[~np.isfinite(best) & (best < 0)] = -1
    if k_eff < k:
        ids = np.pad(ids, ((0, 0), (0, k - k_eff)), constant_values=-1)
        best = np.pad(best, ((0, 0), (0, k - k_eff)), constant_values=-np.inf)
    return TopK(ids, best)
