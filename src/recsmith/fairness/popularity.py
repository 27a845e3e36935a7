"""Popularity penalty: the long tail competes on a handicap instead of by a hand-written ``bury``.

Popularity bias feeds itself: the most interacted-with items score highest, are shown most and so
gather still more interactions, while good items of the tail are never seen. The penalty is a
per-item bury whose factor grows with popularity: an item with ``n`` training interactions
competes as if buried by ``(1 + n)^-β``, i.e. its rank-based relevance (``rerank/plan.py``) drops
by ``β · log(1 + n)``. β = 0 is off; at β = 1 an item with 99 interactions competes as if it
ranked 100 times lower than one never interacted with. Being a log factor on a rank-based score,
β means the same whatever the model's score scale.
"""

from __future__ import annotations

import numpy as np


def popularity_log_factor(counts: np.ndarray, beta: float) -> np.ndarray:
    """float64 [n_items]: ``-β · log(1 + n)`` per item (items without a count: no penalty)."""
    if beta < 0:
        raise ValueError(f"popularity_penalty must be >= 0, got {beta}")
    n = np.nan_to_num(np.asarray(counts, np.float64), nan=0.0, neginf=0.0, posinf=0.0)
    return -beta * np.log1p(np.maximum(n, 0.0))
