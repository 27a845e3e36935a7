"""Beyond-accuracy metrics: diversity, novelty, popularity bias and personalisation of top-k lists.

A model can win on recall by recommending the same bestsellers to everyone; these metrics show that
cost. Inputs follow ``metrics``: ``recs`` is int [n_users, k] of internal item indices, -1 = empty
slot (``TopK.ids``). Empty slots are skipped, never counted as an item. Per-user functions return
float64 [n_users] with NaN where a list has nothing to measure (too few items, empty profile), so
callers average with ``np.nanmean`` rather than letting an undefined value pass for 0.

Pairwise quantities use one identity instead of a k×k (or users×users) loop: for vectors x_i,
``sum_{i<j} x_i·x_j = (|sum_i x_i|^2 - sum_i |x_i|^2) / 2``. With L2-normalised rows that sum is
the sum of pairwise cosines, computed from one sparse product in O(n_users * k * d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

FeaturesLike = np.ndarray | sparse.sparray | sparse.spmatrix
_CHUNK_ROWS = 65_536  # users per block when a dense [users, d] product is needed


def _check_recs(recs: np.ndarray, n_items: int) -> np.ndarray:
    recs = np.asarray(recs)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise ValueError(f"recs must be a 2-D integer array, got {recs.dtype} {recs.shape}")
    if recs.size and (recs.min() < -1 or recs.max() >= n_items):
        raise ValueError(f"recs must hold item indices in [0, {n_items}) or -1 for no item")
    return recs.astype(np.int64)


def _slot_matrix(recs: np.ndarray, n_items: int) -> sparse.csr_array:
    """[n_users, n_items] count of each item's slots in each list (duplicates count twice)."""
    rows, cols = np.nonzero(recs >= 0)
    data = np.ones(len(rows), dtype=np.float64)
    out = sparse.csr_array((data, (rows, recs[rows, cols])), shape=(recs.shape[0], n_items))
    out.sum_duplicates()
    return out


def _per_slot_mean(recs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mean of ``values[item]`` over each list's filled slots; NaN for an empty list."""
    filled = recs >= 0
    total = np.where(filled, values[np.maximum(recs, 0)], 0.0).sum(axis=1)
    count = filled.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _popularity(item_popularity: np.ndarray) -> np.ndarray:
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.ndim != 1 or (pop.size and (not np.isfinite(pop).all() or pop.min() < 0)):
        raise ValueError("item_popularity must be a 1-D array of non-negative finite counts")
    return pop


def intra_list_diversity(recs: np.ndarray, item_features: FeaturesLike) -> np.ndarray:
    """Per user: mean over the list's item pairs of ``1 - cosine(features_i, features_j)``.

    ``item_features`` is [n_items, d], dense or scipy sparse (category one-hots, embeddings). For
    non-negative features the result lies in [0, 1]; signed embeddings can reach 2. An item whose
    feature row is all zero has no direction: it counts as unlike every other item (similarity
    0). Lists with fewer than two items have no pairs and get NaN. The result is clipped to its
    mathematical range, since the pair sum is taken from squared norms and rounding can push an
    all-orthogonal list a hair past 1.
    """
    n_items = item_features.shape[0]
    recs = _check_recs(recs, n_items)
    if sparse.issparse(item_features):
        feats = sparse.csr_array(item_features, dtype=np.float64)
        norms = np.sqrt(np.asarray(feats.multiply(feats).sum(axis=1)).ravel())
        signed = feats.nnz > 0 and feats.data.min() < 0
    else:
        feats = np.asarray(item_features, dtype=np.float64)
        if feats.ndim != 2:
            raise ValueError(f"item_features must be 2-D, got shape {feats.shape}")
        norms = np.linalg.norm(feats, axis=1)
        signed = feats.size > 0 and feats.min() < 0
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    unit = sparse.diags_array(inv) @ feats if sparse.issparse(feats) else feats * inv[:, None]
    slots = _slot_matrix(recs, n_items)
    summed_sq = np.empty(recs.shape[0], dtype=np.float64)
    for start in range(0, recs.shape[0], _CHUNK_ROWS):
        block = slots[start : start + _CHUNK_ROWS] @ unit  # sum of unit vectors per list
        summed_sq[start : start + _CHUNK_ROWS] = _row_sq_norms(block)
    filled = recs >= 0
    self_sq = np.where(filled, (norms > 0)[np.maximum(recs, 0)], False).sum(axis=1)
    m = filled.sum(axis=1).astype(np.float64)
    pairs = m * (m - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = (summed_sq - self_sq) / 2 / pairs
    upper = 2.0 if signed else 1.0
    return np.where(pairs > 0, np.clip(1.0 - similarity, 0.0, upper), np.nan)


def _row_sq_norms(block: FeaturesLike) -> np.ndarray:
    if sparse.issparse(block):
        return np.asarray(block.multiply(block).sum(axis=1), dtype=np.float64).ravel()
    return np.einsum("ij,ij->i", block, block)


def novelty(recs: np.ndarray, item_popularity: np.ndarray, n_users: int) -> np.ndarray:
    """Per user: mean self-information ``-log2(pop_i / n_users)`` of the listed items, in bits.

    ``item_popularity[i]`` should count the distinct users who interacted with item i, so that
    ``pop_i / n_users`` is the chance a random user knows it. A popularity of 0 is read as 1 (the
    item would otherwise be infinitely novel), and the ratio is capped at 1 so raw event counts
    cannot make novelty negative. Empty lists get NaN.
    """
    if n_users < 1:
        raise ValueError(f"n_users must be >= 1, got {n_users}")
    pop = _popularity(item_popularity)
    recs = _check_recs(recs, len(pop))
    share = np.minimum(np.maximum(pop, 1.0) / n_users, 1.0)
    return _per_slot_mean(recs, -np.log2(share))


def average_popularity(recs: np.ndarray, item_popularity: np.ndarray) -> np.ndarray:
    """Per user: mean popularity of the listed items (ARP); NaN for an empty list."""
    pop = _popularity(item_popularity)
    return _per_slot_mean(_check_recs(recs, len(pop)), pop)


def popularity_lift(
    recs: np.ndarray,
    item_popularity: np.ndarray,
    train_user_items: sparse.sparray | sparse.spmatrix,
) -> np.ndarray:
    """Per user: ARP of the list / mean popularity of the distinct items in their training profile.

    Row u of ``train_user_items`` [n_users, n_items] is the profile of the user in ``recs`` row u
    (nonzero = interacted). 1 means lists as popular as what the user consumes; above 1 the model
    pushes more popular items than the user's taste (popularity bias); ``lift - 1`` is the relative
    lift of Abdollahpouri et al. NaN where the list is empty or the profile is empty or has zero
    popularity.
    """
    pop = _popularity(item_popularity)
    recs = _check_recs(recs, len(pop))
    profile = sparse.csr_array(train_user_items, dtype=np.float64)
    if profile.shape != (recs.shape[0], len(pop)):
        raise ValueError(
            f"train_user_items is {profile.shape}, expected {(recs.shape[0], len(pop))}"
        )
    profile.sum_duplicates()
    profile.eliminate_zeros()
    profile.data[:] = 1.0
    counts = np.diff(profile.indptr)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile_arp = np.where(counts > 0, (profile @ pop) / np.maximum(counts, 1), np.nan)
        lift = average_popularity(recs, pop) / profile_arp
    return np.where(profile_arp > 0, lift, np.nan)


def personalisation(recs: np.ndarray, n_items: int) -> float:
    """1 - mean cosine overlap ``|A ∩ B| / sqrt(|A| |B|)`` over all pairs of users' lists.

    1 when no two lists share an item, 0 when every list is the same. Exact over all pairs without
    a users×users matrix: with each list as a unit-norm indicator vector, the pairwise sum is
    ``(|sum of vectors|^2 - n_lists) / 2`` (see the module docstring), O(n_users * k). Lists are
    sets (a repeated item counts once); users with empty lists are left out, and fewer than two
    non-empty lists give NaN.
    """
    recs = _check_recs(recs, n_items)
    sets = _slot_matrix(recs, n_items)
    sets.data[:] = 1.0
    sizes = np.diff(sets.indptr).astype(np.float64)
    lists = int((sizes > 0).sum())
    if lists < 2:
        return float("nan")
    inv_norm = np.divide(1.0, np.sqrt(sizes), out=np.zeros_like(sizes), where=sizes > 0)
    unit = sparse.diags_array(inv_norm) @ sets  # each non-empty list a unit vector
    total = np.asarray(unit.sum(axis=0)).ravel()
    overlap = (float(total @ total) - lists) / 2 / (lists * (lists - 1) / 2)
    return float(np.clip(1.0 - overlap, 0.0, 1.0))


@dataclass(frozen=True, slots=True)
class HeadTailShare:
    """Share of filled recommendation slots on head vs tail items, and the head's share of the
    interactions themselves (what an unbiased recommender would roughly match)."""

    head: float
    tail: float
    n_head_items: int
    interaction_head: float


def head_tail_share(
    recs: np.ndarray, item_popularity: np.ndarray, head_fraction: float = 0.2
) -> HeadTailShare:
    """Split slots between head items (the top ``head_fraction`` of the catalog by popularity) and
    the tail, for the popularity-bias plot.

    The head is every item with non-zero popularity at least that of the ``ceil(head_fraction *
    n_items)``-th most popular item: items tied at the threshold all join the head, so the split
    never depends on item order. Shares are NaN when no slot is filled.
    """
    if not 0.0 < head_fraction < 1.0:
        raise ValueError(f"head_fraction must be in (0, 1), got {head_fraction}")
    pop = _popularity(item_popularity)
    recs = _check_recs(recs, len(pop))
    if len(pop) == 0:
        return HeadTailShare(float("nan"), float("nan"), 0, float("nan"))
    rank = max(int(np.ceil(head_fraction * len(pop))), 1)
    threshold = np.sort(pop)[::-1][rank - 1]
    head = (pop >= threshold) & (pop > 0)
    filled = recs[recs >= 0]
    head_slots = float(head[filled].mean()) if filled.size else float("nan")
    interactions = float(pop[head].sum() / pop.sum()) if pop.sum() > 0 else float("nan")
    return HeadTailShare(head_slots, 1.0 - head_slots, int(head.sum()), interactions)
