"""Offline metrics debiased for exposure: ``recsmith evaluate --debias popularity[:ETA]``.

A test interaction is only observed if the item was shown, and popular items were shown far more
often, so plain recall and NDCG reward a model for recommending what users were exposed to rather
than what they like (missing-not-at-random feedback; Yang et al., RecSys 2018, "Unbiased offline
recommender evaluation for missing-not-at-random implicit feedback"). The estimator here weights
each test interaction by the inverse of its item's estimated exposure propensity,

    p_i = (n_i / max_j n_j) ** eta,

where ``n_i`` counts the training users of item ``i`` (at least 1, so an item new in the test gets
the largest weight) and ``eta`` (default 0.5) says how strongly exposure follows popularity:
0 gives the plain metrics back, 1 assumes exposure proportional to popularity. ``eta`` is a stated
assumption, not estimated from the data (a log of what was shown would be needed for that; with
one, use ``recsmith ope``).

Each hit counts ``w_i / w̄`` instead of 1, ``w_i = 1 / p_i``, ``w̄`` the mean weight over every
test interaction; everything else is the plain metric's (``metrics.py``):

- ``recall_debiased`` = Σ_{hits} w_i / w̄, over the user's number of test items
- ``ndcg_debiased`` = Σ_{hits} (w_i / w̄) / log2(rank + 1), over the plain ideal DCG

This is Yang et al.'s inverse-propensity estimator (each user's interactions averaged, then the
users) with its overall scale set by ``w̄`` (a self-normalisation over the whole test set, as
SNIPS does): the figures read on the plain metrics' scale and equal them at ``eta = 0``. The
normalisation is global, not per user, on purpose: per user it would cancel the weight whenever a
user has one test item (leave-last-out), leaving the plain metric. A user's value can exceed 1
(a hit on a rarely shown item); the mean is what estimates the unbiased metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recsmith.errors import ValidationError
from recsmith.evaluation.metrics import hit_matrix

#: The default exposure exponent: between no bias (0) and exposure proportional to popularity (1).
DEFAULT_ETA = 0.5
#: The names the debiased metrics have in results and JSON.
DEBIASED = ("ndcg_debiased", "recall_debiased")


@dataclass(frozen=True, slots=True)
class Debias:
    """``--debias popularity:ETA`` parsed."""

    eta: float = DEFAULT_ETA

    @property
    def label(self) -> str:
        return f"popularity:{self.eta:g}"


def parse_debias(spec: str) -> Debias:
    """``popularity`` or ``popularity:ETA`` (0 ≤ ETA ≤ 4); anything else names ``--debias``."""
    kind, _, value = spec.strip().partition(":")
    if kind != "popularity":
        raise ValidationError("--debias", f"{spec!r}: expected popularity or popularity:ETA")
    if not value:
        return Debias()
    try:
        eta = float(value)
    except ValueError:
        raise ValidationError("--debias", f"{value!r} is not a number") from None
    if not 0.0 <= eta <= 4.0:
        raise ValidationError("--debias", f"ETA must be between 0 and 4, got {eta:g}")
    return Debias(eta)


def inverse_propensities(train: sparse.csr_array | sparse.csr_matrix, eta: float) -> np.ndarray:
    """1 / p_i per item column of the user × item training matrix (see module docstring)."""
    users_per_item = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
    counts = np.maximum(users_per_item, 1.0)
    return (counts.max() / counts) ** eta


def debiased_metrics(
    recs: np.ndarray, truth: sparse.csr_array | sparse.csr_matrix, weights: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """Per-user ``ndcg_debiased`` and ``recall_debiased`` of top lists ``recs`` (item indices,
    -1 = empty slot) against ``truth`` (users × items, nonzero = relevant), item ``weights``."""
    hit = hit_matrix(recs, truth, k)  # validates recs; k columns, short lists padded
    n_users, width = hit.shape
    lists = np.full((n_users, width), -1, np.int64)
    given = np.asarray(recs)[:, :width]
    lists[:, : given.shape[1]] = given
    truth = sparse.csr_array(truth)
    truth.sum_duplicates()
    truth.eliminate_zeros()
    n_relevant = np.diff(truth.indptr)
    scale = weights[truth.indices].mean()  # w̄ over every test interaction
    gain = np.where(hit, weights[np.maximum(lists, 0)] / scale, 0.0)
    discounts = 1.0 / np.log2(np.arange(2, width + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, width) - 1]
    return {
        "ndcg_debiased": (gain @ discounts) / ideal,
        "recall_debiased": gain.sum(axis=1) / n_relevant,
    }
