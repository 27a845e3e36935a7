"""Who gets exposure, and does each list match its user's mix of interests.

Two offline measures of top-k lists, beside ``beyond``'s diversity and popularity metrics:

* **Exposure** — how the list slots spread over items and over item groups (categories, or any
  item property). Gini and Shannon entropy of the per-item slot counts over the *whole* catalogue
  (an item never shown is a zero, which is what makes a Gini of exposure mean anything); the share
  of the catalogue and of each group ever shown; and position-weighted exposure, where the slot at
  1-based position ``j`` counts ``1 / log2(j + 1)`` (the DCG discount: attention falls with rank).
* **Miscalibration** — Steck, *Calibrated Recommendations*, RecSys 2018: per user,
  ``KL(p || q̃) = Σ_g p(g) log(p(g) / q̃(g))`` (natural log) where ``p`` is the category mix of the
  user's history, ``q`` that of the list and ``q̃ = (1 - α) q + α p`` with ``α = 0.01``, so a
  category the list misses costs a finite amount instead of infinity.
  ``p(g) = Σ_i w_ui p(g|i) / Σ_i w_ui`` with ``w_ui`` the interaction weight and
  ``p(g|i) = 1/|G_i|`` (an item's categories share its weight, as in Steck). ``q`` weighs every
  filled slot equally (not by position): the calibrated re-ranking it is meant to judge fills a
  set. ``log(p/q̃) <= log(1/α)``, so a category the list misses costs at most ``p(g) log(100)``.

Inputs follow ``beyond``: ``recs`` int [n_users, k], -1 = empty slot. Items map to groups through
a [n_items, n_groups] membership matrix whose rows sum to 1 (or are empty for an item with no
group; ``group_matrix`` builds it). All sums are sparse products over users; the only dense
[users, groups] blocks are taken ``_CHUNK_CELLS`` at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recsmith.evaluation.beyond import _check_recs, _slot_matrix

#: Steck's smoothing weight: q̃ = (1 - α) q + α p.
ALPHA = 0.01
_CHUNK_CELLS = 1 << 22  # dense [users, groups] cells held at once in ``miscalibration``


def position_weights(k: int) -> np.ndarray:
    """The DCG discount ``1 / log2(j + 1)`` of 1-based positions j = 1..k (1 for the top slot)."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def group_matrix(labels: Sequence[Sequence[str]]) -> tuple[sparse.csr_array, list[str]]:
    """Membership [n_items, n_groups] of items labelled ``labels[i]`` (its categories, or its one
    property value), each row's groups sharing weight 1 (Steck's ``p(g|i) = 1/|G_i|``), and the
    group names, sorted. Repeated labels of one item count once; an unlabelled item gets an empty
    row and takes part in no group measure."""
    rows: list[int] = []
    names: list[str] = []
    for i, item_labels in enumerate(labels):  # per item metadata; the maths below is vectorised
        distinct = sorted(set(item_labels))
        rows.extend([i] * len(distinct))
        names.extend(distinct)
    groups, codes = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    row = np.asarray(rows, dtype=np.int64)
    per_item = np.bincount(row, minlength=len(labels)).astype(np.float64)
    matrix = sparse.csr_array(
        (1.0 / per_item[row], (row, codes.astype(np.int64))), shape=(len(labels), len(groups))
    )
    return matrix, [str(g) for g in groups]


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values``: 0 when all are equal, ``1 - 1/n`` when one entry
    holds everything. ``G = Σ_j (2j - n - 1) x_(j) / (n Σ x)`` over the values sorted ascending
    (j from 1). NaN when all are zero (nothing is spread)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    total = x.sum()
    if len(x) == 0 or total <= 0:
        return float("nan")
    n = len(x)
    j = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * j - n - 1) * x).sum() / (n * total))


def entropy_bits(values: np.ndarray) -> float:
    """Shannon entropy, in bits, of ``values`` read as a distribution (normalised to sum 1); zeros
    add nothing. ``log2(n)`` when exposure is uniform over n entries; NaN when all are zero."""
    x = np.asarray(values, dtype=np.float64)
    total = x.sum()
    if total <= 0:
        return float("nan")
    share = x[x > 0] / total
    return float(-(share * np.log2(share)).sum())


@dataclass(frozen=True, slots=True)
class GroupExposure:
    """One item group's exposure: the share of catalogue items in it (an item in two groups counts
    in both, so these can sum past 1), the share of its items ever shown, and its share of the
    slots and of the position-weighted slots on items with a group (a multi-group item's slot is
    split between its groups, so these sum to 1)."""

    name: str
    catalogue_share: float
    shown: float
    slot_share: float
    weighted_share: float


@dataclass(frozen=True, slots=True)
class Exposure:
    """How list slots spread over items and groups (see the module docstring for definitions)."""

    gini: float
    entropy: float
    weighted_gini: float
    catalogue_shown: float
    group_gini: float
    group_entropy: float
    groups: tuple[GroupExposure, ...]

    def scalars(self) -> dict[str, float]:
        """The named figures ``evaluate --json`` reports beside the beyond-accuracy metrics."""
        return {
            "exposure_gini": self.gini,
            "exposure_entropy": self.entropy,
            "exposure_gini_weighted": self.weighted_gini,
            "catalogue_shown": self.catalogue_shown,
            "group_exposure_gini": self.group_gini,
            "group_exposure_entropy": self.group_entropy,
        }


def item_exposure(recs: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Per item: slot count and position-weighted slot count (``position_weights``) over all
    lists. Empty slots count for nothing, and do not move later items up a position."""
    recs = _check_recs(recs, n_items)
    filled = recs >= 0
    weights = np.broadcast_to(position_weights(recs.shape[1]), recs.shape)
    slots = np.bincount(recs[filled], minlength=n_items).astype(np.float64)
    weighted = np.bincount(recs[filled], weights=weights[filled], minlength=n_items)
    return slots, weighted


def exposure(
    recs: np.ndarray,
    n_items: int,
    groups: sparse.csr_array | None = None,
    names: Sequence[str] = (),
) -> Exposure:
    """Exposure of the items in ``recs`` over the whole catalogue of ``n_items`` (never-shown items
    count as zeros) and over the ``groups`` (``group_matrix``, [n_items, n_groups]). Group
    figures are NaN / empty without groups."""
    if groups is not None and groups.shape[0] != n_items:
        raise ValueError(f"groups has {groups.shape[0]} rows for {n_items} items")
    slots, weighted = item_exposure(recs, n_items)
    shown_items = slots > 0
    group_rows: list[GroupExposure] = []
    group_slots = np.zeros(0)
    if groups is not None and groups.shape[1]:
        if len(names) != groups.shape[1]:
            raise ValueError(f"names has {len(names)} entries for {groups.shape[1]} groups")
        member = groups.copy()
        member.data[:] = 1.0
        members = np.asarray(member.sum(axis=0)).ravel()
        shown_members = member.T @ shown_items.astype(np.float64)
        group_slots = groups.T @ slots
        group_weighted = groups.T @ weighted
        total_slots, total_weighted = group_slots.sum(), group_weighted.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            group_rows = [
                GroupExposure(
                    name,
                    float(members[g] / n_items),
                    float(shown_members[g] / members[g]),
                    float(group_slots[g] / total_slots),
                    float(group_weighted[g] / total_weighted),
                )
                for g, name in enumerate(names)
            ]
    return Exposure(
        gini=gini(slots),
        entropy=entropy_bits(slots),
        weighted_gini=gini(weighted),
        catalogue_shown=float(shown_items.mean()) if n_items else float("nan"),
        group_gini=gini(group_slots) if len(group_slots) else float("nan"),
        group_entropy=entropy_bits(group_slots) if len(group_slots) else float("nan"),
        groups=tuple(group_rows),
    )


def miscalibration(
    recs: np.ndarray,
    history: sparse.sparray | sparse.spmatrix,
    groups: sparse.csr_array,
    alpha: float = ALPHA,
) -> np.ndarray:
    """Per user: Steck's ``KL(p || q̃)`` in nats (module docstring). Row u of ``history``
    [n_users, n_items] holds user u's interaction weights (``recs`` row u is their list). NaN where
    the history or the list has no item with a group: there is no mix to compare."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    recs = _check_recs(recs, groups.shape[0])
    hist = sparse.csr_array(history, dtype=np.float64)
    if hist.shape != (recs.shape[0], groups.shape[0]):
        raise ValueError(f"history is {hist.shape}, expected {(recs.shape[0], groups.shape[0])}")
    if hist.nnz and hist.data.min() < 0:
        raise ValueError("history must hold non-negative interaction weights")
    p_mass = (hist @ groups).tocsr()
    q_mass = (_slot_matrix(recs, groups.shape[0]) @ groups).tocsr()
    out = np.empty(recs.shape[0], dtype=np.float64)
    chunk = max(1, _CHUNK_CELLS // max(groups.shape[1], 1))
    for start in range(0, recs.shape[0], chunk):
        p, has_p = _distribution(p_mass[start : start + chunk])
        q, has_q = _distribution(q_mass[start : start + chunk])
        smoothed = (1.0 - alpha) * q + alpha * p
        with np.errstate(invalid="ignore", divide="ignore"):
            terms = np.where(p > 0, p * np.log(p / smoothed), 0.0)
        out[start : start + chunk] = np.where(has_p & has_q, terms.sum(axis=1), np.nan)
    return out


def _distribution(mass: sparse.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """Dense rows of ``mass`` normalised to sum 1 (zero rows stay zero), and which rows had
    any mass."""
    dense = mass.toarray()
    total = dense.sum(axis=1)
    has = total > 0
    return dense / np.where(has, total, 1.0)[:, None], has
