"""SLIST's transition model (Choi et al., WWW 2021, "Session-aware Linear Item-Item Models for
Session-based Recommendation") over users' time-ordered sequences instead of sessions: the
item → next-item relation as a closed-form least-squares fit, where ``transitions`` counts it.

SLIT, the transition part: every step t of a user's sequence (a step is one timestamp, as in
``transitions``: ``timed_sequences``; a timestamp of more than max(steps, history) + 1 items is cut
into runs of that many in item order, one step apart, so items with no order among them become
one-way input → follower rows) that has a follower gives one row of inputs z_t, the items
of the user's ``history`` latest steps up to t, the k-th latest (k = 0, 1, ...) weighted
1/(k+1) (``transitions``' scoring weights), scaled to sum to one; and one row of targets y_t, the
items of the ``steps`` steps after t, the d-th weighted 1/d. B = P · ZᵀY with P = (ZᵀZ + λI)⁻¹,
the ridge solution of min ‖Y − ZB‖² + λ‖B‖². Where ``transitions`` credits every earlier item
with a follower on its own, the least squares credits the items that explain it jointly: an item
always met beside a stronger predictor gets less (the decorrelation EASE does for co-occurrence).

``alpha`` > 0 is SLIST's blend with SLIS: the users' whole histories join as rows that predict
themselves, weighted alpha against 1 − alpha for SLIT's rows, in one solve. As in the authors'
code (jin530/SLIST: ``normalize(input_matrix, 'l1')`` on the inputs only), a history's input row
X̃ is scaled to sum to one and its target X stays binary: B = (α X̃ᵀX̃ + (1 − α) ZᵀZ + λI)⁻¹
(α X̃ᵀX + (1 − α) ZᵀY), the paper's form for α < 1 with its inputs scaled, so ``alpha`` weighs
SLIS as the paper's α does (without EASE's zero-diagonal constraint: B's diagonal is dropped
afterwards). Scaling the targets too would shrink SLIS's pull by about a history's length
(review rv30s F2).

A user is scored as an input row at their latest step: the same weights over their ``history``
latest steps (``latest_weighted``; the scale to one does not change the order). Serving, the
online state (``history_after``), persistence and similar items are ``Transitions``': B's
diagonal is dropped (an item is not its own follower) and each row keeps its ``neighbors``
largest positive weights, so B is stored sparse and scores as the rules do.

Cost: the solve is dense over the kept items (n³ flops, as EASE's): above ``max_items`` only the
most popular items (by users) are in the fit; the others get and give no weight (the other
sources and the popularity fill rank them). The inputs' Gram and ZᵀY are sparse products over
the steps, B = P · ZᵀY one sparse-by-dense product (cost: n × the nonzeros of ZᵀY).
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions, binarize
from recsmith.models.base import ModelConfig
from recsmith.models.ease import spd_inverse
from recsmith.models.item_to_item import top_k_of_rows
from recsmith.models.transitions import (
    Transitions,
    latest_steps,
    latest_weighted,
    timed_sequences,
)


class SlistConfig(ModelConfig):
    regularization: float = Field(10.0, gt=0, description="λ added to the inputs' Gram diagonal")
    alpha: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="share of SLIS's rows (whole histories predicting themselves) beside"
        " SLIT's (inputs predicting followers); 0 = SLIT alone",
    )
    steps: int = Field(1, ge=1, description="followers within this many steps are targets")
    history: int = Field(10, ge=1, description="latest steps an input row (and a user) holds")
    neighbors: int = Field(200, ge=1, description="largest positive weights kept per item")
    max_items: int = Field(
        20_000, ge=2, description="only the most popular items are fitted above this"
    )


def step_rows(
    indptr: np.ndarray,
    group: np.ndarray,
    items: np.ndarray,
    n_items: int,
    history: int,
    steps: int,
) -> tuple[sparse.csr_array, sparse.csr_array]:
    """(Z, Y): one row per step with a follower of ``timed_sequences``' output. Z: the items of
    the ``history`` latest steps up to it, the k-th latest weighted 1/(k+1) (not yet scaled);
    Y: the items of the ``steps`` steps after it, the d-th weighted 1/d. Both as S · M, M
    steps × items, S the weights between one step and the others of its user."""
    n_groups = int(indptr[-1])
    m = sparse.csr_array(
        (np.ones(len(items)), (group, items)), shape=(n_groups, n_items), dtype=np.float64
    )
    sizes = np.diff(indptr)
    first = np.repeat(indptr[:-1], sizes)  # each step's user's first and after-last step
    end = np.repeat(indptr[1:], sizes)
    at = np.flatnonzero(np.arange(n_groups) + 1 < end)  # steps with a follower
    row = np.arange(len(at))

    def spread(offsets: range, sign: int, bound: np.ndarray, shift: float) -> sparse.csr_array:
        rows, cols, weights = [], [], []
        for d in offsets:
            to = at + sign * d
            inside = (to >= bound) if sign < 0 else (to < bound)
            rows.append(row[inside])
            cols.append(to[inside])
            weights.append(np.full(int(inside.sum()), 1.0 / (d + shift)))
        s = sparse.csr_array(
            (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
            shape=(len(at), n_groups),
        )
        return sparse.csr_array(s @ m)

    inputs = spread(range(history), -1, first[at], 1.0)
    targets = spread(range(1, steps + 1), 1, end[at], 0.0)
    return inputs, targets


def unit_sums(rows: sparse.csr_array) -> sparse.csr_array:
    """``rows`` each scaled to sum to one (an empty row stays empty)."""
    totals = np.asarray(rows.sum(axis=1)).ravel()
    scale = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
    return sparse.csr_array(sparse.diags_array(scale) @ rows)


class Slist(Transitions):
    """Score(u, j) = Σ_k 1/(k+1) · B[item_k(u), j] over the user's latest items item_k, B the
    least-squares item → follower weights (module docstring)."""

    name = "slist"
    Config = SlistConfig
    config: SlistConfig

    def fit(self, data: Interactions) -> Self:
        cfg = self.config
        indptr, group, items = timed_sequences(data, cap=max(cfg.steps, cfg.history) + 1)
        x = binarize(data.matrix)
        if data.n_items > cfg.max_items:
            users = np.bincount(x.indices, minlength=data.n_items)
            kept = np.sort(np.argsort(-users, kind="stable")[: cfg.max_items])
        else:
            kept = np.arange(data.n_items)
        inputs, targets = step_rows(indptr, group, items, data.n_items, cfg.history, cfg.steps)
        z = unit_sums(inputs[:, kept])
        gram = sparse.csr_array((1 - cfg.alpha) * (z.T @ z))
        cross = sparse.csr_array((1 - cfg.alpha) * (z.T @ targets[:, kept]))
        if cfg.alpha > 0:
            whole = sparse.csr_array(x[:, kept], dtype=np.float64)
            scaled = unit_sums(whole)  # inputs scaled, targets binary (module docstring)
            gram = gram + sparse.csr_array(cfg.alpha * (scaled.T @ scaled))
            cross = cross + sparse.csr_array(cfg.alpha * (scaled.T @ whole))
        dense = gram.astype(np.float32).toarray()  # float32 as EASE's default: half the memory
        dense[np.diag_indices_from(dense)] += cfg.regularization
        p = spd_inverse(dense)
        # P · ZᵀY as ((ZᵀY)ᵀ · P)ᵀ, P symmetric: n × nnz(ZᵀY) flops, no n³ product
        weights = np.asarray(cross.T.astype(np.float32) @ p).T
        top = top_k_of_rows(
            len(kept), lambda start, stop: weights[start:stop].copy(), cfg.neighbors
        ).tocoo()
        self.association_ = sparse.csr_array(
            (top.data, (kept[top.row], kept[top.col])),
            shape=(data.n_items, data.n_items),
            dtype=np.float32,
        )
        self.user_items_ = latest_weighted(indptr, group, items, data.n_items, cfg.history)
        self.user_steps_ = latest_steps(indptr, group, items, data.n_items, cfg.history)
        return self
