"""Vectorised top-k ranking metrics: one hit matrix, then each metric is a few array reductions.

Inputs are ``recs`` (int [n_users, k] internal item indices, best first, -1 = no item, as in
``TopK.ids``) and ``truth`` (scipy sparse [n_users, n_items], nonzero = relevant). The hit matrix is
built with one ``searchsorted`` over row-offset keys (``row * n_items + item``) of the canonical
(sorted, de-duplicated) truth, so evaluation costs O(n_users * k * log nnz) with no per-user Python.

Every metric needs at least one relevant item per user (recall and the normalisations divide by it),
so users with empty truth must be excluded by the caller; passing one raises ``ValueError`` instead
of silently scoring it as zero, which would drag the mean down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsmith.errors import ValidationError

TruthLike = sp.sparray | sp.spmatrix
MetricFn = Callable[[np.ndarray, TruthLike, int | None], np.ndarray]
DEFAULT_METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


@dataclass(frozen=True, slots=True)
class MetricResult:
    """Mean of each metric over users, the per-user vectors behind them, and catalog coverage."""

    means: dict[str, float]
    per_user: dict[str, np.ndarray]
    coverage: float


def _canonical_truth(truth: TruthLike) -> sp.csr_array:
    """CSR copy with sorted, unique column indices and no stored zeros (the hit lookup needs it)."""
    if not sp.issparse(truth):
        raise TypeError(f"truth must be a scipy sparse matrix/array, got {type(truth).__name__}")
    canonical = sp.csr_array(truth, copy=True)
    canonical.sum_duplicates()
    canonical.eliminate_zeros()
    return canonical


def _relevant_counts(truth: sp.csr_array) -> np.ndarray:
    counts = np.diff(truth.indptr).astype(np.int64)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        raise ValueError(
            f"{len(empty)} user(s) have no relevant items (first: row {int(empty[0])}); "
            "exclude users with empty truth before computing metrics"
        )
    return counts


def _prepare_recs(recs: np.ndarray, n_rows: int, n_items: int, k: int | None) -> np.ndarray:
    """Validate recs and cut or -1-pad them to ``k`` columns (padding counts in precision's k)."""
    recs = np.asarray(recs)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise ValueError(f"recs must be a 2-D integer array, got {recs.dtype} {recs.shape}")
    if recs.shape[0] != n_rows:
        raise ValueError(f"recs has {recs.shape[0]} rows but truth has {n_rows}")
    k = recs.shape[1] if k is None else k
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    width = min(k, recs.shape[1])
    recs = np.pad(recs[:, :k].astype(np.int64), ((0, 0), (0, k - width)), constant_values=-1)
    if recs.size and (recs.min() < -1 or recs.max() >= n_items):
        raise ValueError(f"recs must hold item indices in [0, {n_items}) or -1 for no item")
    ordered = np.sort(recs)  # each row (recs is 2-D: the last axis)
    dup = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if dup.any():
        row = int(np.flatnonzero(dup.any(axis=1))[0])
        raise ValueError(f"recs row {row} recommends an item twice; a hit may only count once")
    return recs


def _hits(recs: np.ndarray, truth: sp.csr_array) -> np.ndarray:
    """Bool [n_users, k]: recs[u, i] is a relevant item of user u (never for -1 padding)."""
    n_rows, n_items = truth.shape
    rows = np.arange(n_rows, dtype=np.int64)
    # Canonical CSR is sorted by (row, column), so these keys are globally sorted.
    # Never empty while recs has a row: every user has a relevant item (``_relevant_counts``).
    truth_keys = np.repeat(rows, np.diff(truth.indptr)) * n_items + truth.indices
    rec_keys = rows[:, None] * n_items + recs
    pos = np.minimum(np.searchsorted(truth_keys, rec_keys), len(truth_keys) - 1)
    return (recs >= 0) & (truth_keys[pos] == rec_keys)


def _prepare(recs: np.ndarray, truth: TruthLike, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    canonical = _canonical_truth(truth)
    n_relevant = _relevant_counts(canonical)
    recs = _prepare_recs(recs, canonical.shape[0], canonical.shape[1], k)
    return _hits(recs, canonical), n_relevant


def hit_matrix(recs: np.ndarray, truth: TruthLike, k: int | None = None) -> np.ndarray:
    """The bool [n_users, k] hit matrix every metric here is computed from."""
    return _prepare(recs, truth, k)[0]


def _discounts(k: int) -> np.ndarray:
    return np.reciprocal(np.log2(np.arange(2, k + 2)))


def _precision(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / hits.shape[1]


def _recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / n_relevant


def _ndcg(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    discounts = _discounts(k)
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return (hits @ discounts) / ideal


def _average_precision(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return (precision_at_i * hits).sum(axis=1) / np.minimum(n_relevant, k)


def _hit_rate(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    return np.where(hits.any(axis=1), 1.0, 0.0)


def _reciprocal_rank(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1.0), 0.0)


_KERNELS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "precision": _precision,
    "recall": _recall,
    "ndcg": _ndcg,
    "map": _average_precision,
    "hit_rate": _hit_rate,
    "mrr": _reciprocal_rank,
}


def precision_at_k(recs: np.ndarray, truth: TruthLike, k: int | None = None) -> np.ndarray:
    """Hits / k. Empty (-1) slots still count in k: a short list is not rewarded for being short."""
    return _precision(*_prepare(recs, truth, k))


def recall_at_k(recs: np.ndarray, truth: TruthLike, k: int | None = None) -> np.ndarray:
    """Hits / |truth| (the standard definition; it cannot reach 1 when |truth| > k, by design)."""
    return _recall(*_prepare(recs, truth, k))


def ndcg_at_k(recs: np.ndarray, truth: TruthLike, k: int | None = None) -> np.ndarray:
    """Binary-gain DCG with 1/log2(rank+1) discounts, over the ideal DCG of min(|truth|, k) hits."""
    return _ndcg(*_prepare(recs, truth, k))


def average_precision_at_k(recs: np.ndarray, truth: TruthLike, k: int | None = None) -> np.ndarray:
    """AP@k: the sum of precision@i over hit positions i, over min(|truth|, k) (per-user MAP)."""
    return _average_precision(*_prepare(recs, truth, k))


def hit_rate_at_k(recs: np.ndarray, truth: TruthLike, k: int | None = None) -> np.ndarray:
    """1.0 where any of the top k is relevant, else 0.0."""
    return _hit_rate(*_prepare(recs, truth, k))


def reciprocal_rank(recs: np.ndarray, truth: TruthLike, k: int | None = None) -> np.ndarray:
    """1 / rank of the first relevant item within the top k, 0.0 if there is none (per-user MRR)."""
    return _reciprocal_rank(*_prepare(recs, truth, k))


METRICS: Mapping[str, MetricFn] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "map": average_precision_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": reciprocal_rank,
}


def catalog_coverage(recs: np.ndarray, n_items: int) -> float:
    """Distinct recommended items / n_items: how much of the catalog the lists ever surface."""
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    recs = np.asarray(recs)
    items = recs[recs >= 0]
    if items.size and (recs.min() < -1 or items.max() >= n_items):
        raise ValueError(f"recs must hold item indices in [0, {n_items}) or -1 for no item")
    return float(np.unique(items).size / n_items)


def compute_metrics(
    recs: np.ndarray,
    truth: TruthLike,
    n_items: int,
    names: Iterable[str] = DEFAULT_METRICS,
    k: int | None = None,
) -> MetricResult:
    """Per-user vectors and their means for ``names``, plus coverage, at ``k`` (default: recs
    width).

    The hit matrix is built once and shared by every metric. ``truth`` must span the whole catalog
    (``n_items`` columns) so that item indices mean the same on both sides.
    """
    names = tuple(names)
    unknown = [name for name in names if name not in _KERNELS]
    if unknown:
        raise ValidationError("metrics", f"unknown {unknown}; known: {sorted(_KERNELS)}")
    if sp.issparse(truth) and truth.shape[1] != n_items:
        raise ValueError(f"truth has {truth.shape[1]} item columns but n_items is {n_items}")
    hits, n_relevant = _prepare(recs, truth, k)
    if hits.shape[0] == 0:
        raise ValueError("no users to evaluate")
    per_user = {name: _KERNELS[name](hits, n_relevant) for name in names}
    means = {name: float(values.mean()) for name, values in per_user.items()}
    width = hits.shape[1]
    coverage = catalog_coverage(np.asarray(recs)[:, :width], n_items)
    return MetricResult(means=means, per_user=per_user, coverage=coverage)
