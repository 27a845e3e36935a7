"""EASE (Steck 2019): a closed-form item-item linear model, B = I − P / diag(P), P = (XᵀX + λI)⁻¹.

The solve is dense in the number of items, so memory grows with its square: above ``max_items`` the
model keeps only the most popular items (the "item-subset path"); the others get no score and the
serving fill completes lists from popularity. 20k items need ~3.2 GB in float64, ~1.6 GB in float32,
which is what ``dtype`` chooses between.

``rising`` (off by default) multiplies each score by the item's *rising* factor, (its share of the
recent, decayed events / its share of all distinct users) ** ``rising``: a personal order leaning
towards what is taking off now. EASE's own scores carry all-time popularity, so users who come back
after a while are offered the classics of the whole history while they take what is new (ml-100k
after a time cut: trending alone beats EASE by 20 %, and loses to it by half on each user's last
item — BENCHMARKS §29); the factor moves EASE's order towards the present without giving up the
personal one (§39). Calibration tries it on the user's own validation splits (``GRID``).

``dropout`` (off by default) is the denoising regulariser of Steck 2020 ("Autoencoders that don't
overfit towards the identity", NeurIPS): training on inputs whose entries are dropped with
probability p equals, in expectation, the penalty Λ = λI + p/(1−p)·diagMat(diag(G)) (G = XᵀX), so
an item is penalised in proportion to its own popularity and a popular item cannot explain a user
by itself. Of the paper's two full-rank closed forms this is DLAE's, B = I − P·Λ with
P = (G + Λ)⁻¹, not EDLAE's EASE-like B = I − P·diagMat(1/diag(P)) (which keeps the zero-diagonal
constraint): with the same P, DLAE measured better alone on the samples this was chosen on
(BENCHMARKS §62). B's diagonal is zeroed all the same — it only scores items a user already has,
which serving drops unless ``include_seen``, where a seen item should not win by copying itself.
The solve is the same one EASE does, so p > 0 costs nothing extra; p = 0 is plain EASE (DLAE at
p = 0 would be a ridge regression without EASE's constraint, which is not what 0 should mean). Off
by default and not in calibration's grid: p = 0.5 was within noise of EASE alone on the samples
not chosen on, and the grid, given it, never kept it on validation (§62).

``lowpass`` (off by default) adds GF-CF's ideal low-pass filter (``low_pass.py``) at that weight:
score = EASE's row / its std + lowpass × the filter's row / its std. The filter's rank-k smoothing
of the normalised co-occurrence reaches items EASE's hard-shrunk weights leave near zero on a
sparse matrix: chosen on validation, it held on unread seeds of the simulated marketplace shape
(BENCHMARKS §92). The filter is fitted beside the solve (ARPACK's top k, matrix-free, on the
user–item graph's largest component).

``recency`` (off in the model; the default pipeline's calibration tries β 1 and 3, BENCHMARKS
§187) weighs a known user's own items by how recent they are when the user is scored, after the
solve (no new fit): item i of the user's row counts
1 + recency · 0.5 ** ((place(i) − 1) / ``recency_half_places``), its place 1 for the user's newest
item (by the pair's latest event; items met at one instant share a place). Where each user's
next item follows their last ones (review sequences, each user's last item held out), x_u · B
leans towards what the user did last, as SLIST's and other recency-aware linear models weigh
their inputs; the weights enter EASE's product and the low-pass filter's (the Mult-DAE, trained
on plain rows, reads plain rows). They are kept per known user's stored item
(``user_recency_``), so a release scores a user as evaluation did; items the user met since
training neither take a place nor move the others back: a known user's weights are training-time
until a retrain (a pipeline scores known users from training; taking the newest places needs
training's places, which the release keeps only as weights). A history scored at request time
(a visitor's items) is weighed the same way from its items' places in the order serving has
them (``recommend_from_items``' ``places``, ``_score_places``): a single-model release's stored
items oldest first, a pipeline's recent items newest first (``Queries.latest``); the stores and
the online state give no times, so each item takes its own place. Without places (offline
evaluation's rows, a set) the rows are scored unweighted (BENCHMARKS §189).
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import scipy.linalg
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import (
    Interactions,
    binarize,
    decay_factors,
    pair_decay,
    pair_places,
    ranked_places,
)
from recsmith.models.base import ModelConfig, Recommender, sparse_from_arrays, sparse_to_arrays
from recsmith.models.low_pass import blended, low_pass_factors
from recsmith.models.mult_dae import ARRAY_NAMES, MultDAE, bagged, epochs_for, fit_mult_dae
from recsmith.models.shared_fits import shared
from recsmith.sparse_rows import entry_values


class EASEConfig(ModelConfig):
    regularization: float = Field(250.0, gt=0, description="λ added to the Gram diagonal")
    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description=(
            "DLAE's input-dropout probability p (Steck 2020); 0 = plain EASE. Any p > 0 also"
            " drops EASE's zero-diagonal constraint, so a tiny p is a ridge, not near EASE"
        ),
    )
    max_items: int = Field(20_000, ge=2, description="keep only the most popular items above this")
    dtype: Literal["float32", "float64"] = "float32"
    binary: bool = Field(True, description="fit on 0/1 interactions (the original EASE)")
    rising: float = Field(
        0.0,
        ge=0,
        le=4,
        description="exponent of the rising factor (recent / all-time share); 0 = off",
    )
    rising_half_life_days: float = Field(
        7.0, gt=0, description="half-life of the recent share the rising factor compares"
    )
    lowpass: float = Field(
        0.0,
        ge=0,
        le=10,
        description="weight of GF-CF's low-pass filter beside EASE's scores (each row-scaled);"
        " 0 = off",
    )
    lowpass_rank: int = Field(
        32, ge=1, le=1024, description="singular vectors the low-pass filter keeps"
    )
    autoencoder: float = Field(
        0.0,
        ge=0,
        le=10,
        description="weight of a Mult-DAE's centred logits beside EASE's (and the filter's)"
        " scores, each row-scaled, added after the rising factor (which scales only EASE's"
        " part); 0 = off",
    )
    decay: float = Field(
        0.0,
        ge=0,
        le=100,
        description="half-life of a pair's weight in what EASE learns from (its Gram, filter and"
        " autoencoder), as a share of the data's time span: a pair counts 0.5 ** (age of its"
        " latest event / (decay × span)); 0 = off. Histories are scored as before",
    )
    recency: float = Field(
        0.0,
        ge=0,
        le=100,
        description="β of a user's own items weighed at scoring time by how recent they are (a"
        " known user's by training's places, a visitor's by serving's order): the item at place"
        " p (1 = newest) counts 1 + β · 0.5 ** ((p − 1) / half-places); no new solve; 0 = off",
    )
    recency_half_places: float = Field(
        1.0, gt=0, le=1000, description="places after which recency's extra weight halves"
    )
    autoencoder_hidden: int = Field(64, ge=1, le=1024, description="the Mult-DAE's hidden units")
    autoencoder_networks: int = Field(
        1,
        ge=1,
        le=8,
        description="Mult-DAEs fitted from seeds 0, 1, …, whose logits are averaged (bagging:"
        " each costs one fit and ~10-15 % more scoring; a seed alone moves a sample's lift by"
        " a median 0.9 %, BENCHMARKS §144)",
    )


#: Scores at or below this count as "no personal evidence" under the rising factor (a product
#: with a negative score would turn the factor upside down): the factor alone orders such items.
RISING_FLOOR = 1e-4
#: Added to both shares so an item with no recent events (or none at all) has a finite factor.
SHARE_FLOOR = 1e-6


def rising_factor(
    data: Interactions, kept: np.ndarray, exponent: float, half_life: float
) -> np.ndarray:
    """Per kept item: (share of the decayed recent events / share of distinct users) ** exponent."""
    recent = np.bincount(
        data.event_items,
        weights=decay_factors(data.event_ts, data.reference_ts, half_life),
        minlength=data.n_items,
    )[kept]
    users = np.bincount(data.matrix.indices, minlength=data.n_items)[kept].astype(np.float64)
    ratio = (recent / max(recent.sum(), 1e-12) + SHARE_FLOOR) / (
        users / max(users.sum(), 1.0) + SHARE_FLOOR
    )
    return np.power(ratio, exponent).astype(np.float32)


def recency_weight(places: np.ndarray, beta: float, half: float) -> np.ndarray:
    """Places in time (1 = newest) → the weights 1 + ``beta`` · 0.5 ** ((place − 1) / ``half``),
    float32."""
    return (1.0 + beta * np.power(0.5, (places - 1.0) / half)).astype(np.float32)


def recency_weights(places: sparse.csr_array, beta: float, half: float) -> sparse.csr_array:
    """``places`` (each stored pair's place in its user's items, 1 = newest) → their weights
    (``recency_weight``), the same structure."""
    out = sparse.csr_array(places, dtype=np.float32, copy=True)
    out.data = recency_weight(places.data, beta, half)
    return out


def history_places(history: sparse.csr_array, places: sparse.csr_array) -> np.ndarray:
    """Per stored entry of ``history`` (in its order), its item's place among the row's items
    that ``places`` (canonical rows, 1 = newest) places, renumbered 1, 2, … over them
    (``ranked_places``: a place given to no item of the row, an item listed twice or not
    scored, leaves no gap; equal places stay shared); 0 where the item has none."""
    rows = np.repeat(np.arange(history.shape[0], dtype=np.int64), np.diff(history.indptr))
    place = entry_values(places, rows, history.indices)  # 0 where unplaced: places are >= 1
    found = place > 0
    out = np.zeros(len(rows), np.float32)
    out[found] = ranked_places(rows[found], place[found])
    return out


def spd_inverse(matrix: np.ndarray, block: int = 2048) -> np.ndarray:
    """The inverse of a symmetric positive definite matrix, computed in place (``matrix`` is
    consumed). Cholesky then LAPACK's ``potri``, which inverts from the factor directly: about
    n³ flops instead of the 2.3·n³ of solving against an identity (``cho_solve``), and no second
    n × n matrix. Measured at 17,632 items (lastfm) in the EASE fit: see BENCHMARKS.md §1."""
    n = matrix.shape[0]
    m = matrix.T  # Fortran order over the same memory (and, G being symmetric, the same matrix)
    potrf, potri = scipy.linalg.lapack.get_lapack_funcs(("potrf", "potri"), (m,))
    factor, info = potrf(m, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ValueError(f"matrix is not positive definite (LAPACK potrf info {info})")
    inverse, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"matrix is singular (LAPACK potri info {info})")
    for lo in range(0, n, block):  # potri fills one triangle: mirror it, a block at a time
        hi = min(lo + block, n)
        inverse[lo:hi, :lo] = inverse[:lo, lo:hi].T
        tile = inverse[lo:hi, lo:hi]
        tile[:] = np.triu(tile) + np.triu(tile, 1).T
    return inverse.T  # symmetric: the transpose is the same matrix, in C order


def _dae(
    data: Interactions, xk: sparse.csr_array, rows: tuple, cfg: EASEConfig, seed: int
) -> MultDAE:
    """The Mult-DAE of ``seed`` over the kept items' columns ``xk`` of ``data`` (shared by key:
    ``rows``, what ``xk`` depends on, and the network's own settings)."""
    return shared(
        data,
        (*rows, "dae", cfg.autoencoder_hidden, seed),
        lambda: fit_mult_dae(xk, cfg.autoencoder_hidden, epochs=epochs_for(xk.shape[0]), seed=seed),
    )


class EASE(Recommender):
    """Score(u) = x_u · B over the kept items; other items score -inf."""

    name = "ease"
    Config = EASEConfig
    config: EASEConfig
    weights_: np.ndarray  # [n_kept, n_kept]
    kept_: np.ndarray  # item indices the weights cover
    rising_: np.ndarray  # [n_kept] the rising factor (empty when off)
    lowpass_left_: np.ndarray  # [n_kept, rank] the low-pass filter's factors (empty when off)
    lowpass_right_: np.ndarray  # [rank, n_kept]
    dae_: MultDAE | None  # the autoencoder over kept items (None when off)
    user_items_: sparse.csr_array
    #: per stored pair of ``user_items_`` (the same structure), its recency weight; 0 × 0 when off
    user_recency_: sparse.csr_array
    n_items_: np.ndarray  # scalar array: catalogue size

    def fit(self, data: Interactions) -> Self:
        """The solve, the low-pass factors and the Mult-DAEs are pieces a ``sharing`` block keeps
        for other fits on the same data (``shared_fits.py``: calibration's grid over the rising,
        low-pass and autoencoder weights reuses its λ's solve); each depends only on the data and
        the settings in its key."""
        cfg = self.config
        x = binarize(data.matrix) if cfg.binary else data.matrix.astype(np.float32)
        if data.n_items > cfg.max_items:
            counts = np.bincount(x.indices, minlength=data.n_items)
            kept = np.sort(np.argsort(-counts, kind="stable")[: cfg.max_items])
        else:
            kept = np.arange(data.n_items)
        learnt = sparse.csr_array(x * pair_decay(data, cfg.decay)) if cfg.decay > 0 else x
        xk = learnt[:, kept]
        rows = ("ease", cfg.binary, cfg.max_items, cfg.decay)  # what xk depends on besides data
        self.weights_ = shared(
            data,
            (*rows, "solve", cfg.regularization, cfg.dropout, cfg.dtype),
            lambda: self._solve(xk),
        )
        self.kept_ = kept.astype(np.int64)
        self.rising_ = (
            rising_factor(data, kept, cfg.rising, cfg.rising_half_life_days)
            if cfg.rising > 0
            else np.empty(0, np.float32)
        )
        self.lowpass_left_, self.lowpass_right_ = (
            shared(
                data,
                (*rows, "lowpass", cfg.lowpass_rank),
                lambda: low_pass_factors(xk, cfg.lowpass_rank),
            )
            if cfg.lowpass > 0
            else (np.empty((0, 0), np.float32), np.empty((0, 0), np.float32))
        )
        self.dae_ = (
            bagged([_dae(data, xk, rows, cfg, s) for s in range(cfg.autoencoder_networks)])
            if cfg.autoencoder > 0
            else None
        )
        self.user_items_ = x
        self.user_recency_ = (
            recency_weights(
                shared(data, ("places",), lambda: pair_places(data)),
                cfg.recency,
                cfg.recency_half_places,
            )
            if cfg.recency > 0
            else sparse.csr_array((0, 0), dtype=np.float32)
        )
        self.n_items_ = np.asarray(data.n_items)
        return self

    def _solve(self, xk: sparse.csr_array) -> np.ndarray:
        """B over the kept items' columns ``xk`` (C order, float32)."""
        cfg = self.config
        # in place where the types allow: the Gram dense in C order (``spd_inverse`` inverts it in
        # place; a Fortran-ordered one, csc's default, was copied by LAPACK's wrapper with the
        # original kept alive), no copy of a float32 Gram, B written over P: one n × n array
        # at the solve's peak plus ``spd_inverse``'s mirror tiles (a few 2048² blocks; float32
        # traced peak 2.07 n² at 2,975 items, 4.0 before; review rv30c F2), 576 MB each at 12k
        gram = (xk.T @ xk).toarray(order="C").astype(cfg.dtype, copy=False)
        penalty = cfg.regularization + cfg.dropout / (1.0 - cfg.dropout) * np.diag(gram)  # Λ
        gram[np.diag_indices_from(gram)] += penalty
        p = spd_inverse(gram)
        # B = -P·Λ (DLAE) or -P / diag(P) (EASE), the sign moved onto the factor: the same
        # rounding as negating P first. Λ has the Gram's dtype (NEP 50: a Python float times a
        # float32 array stays float32), so a float32 P times Λ multiplies in float32, as it did
        if cfg.dropout > 0:
            p *= -penalty[None, :]
        else:
            p /= -np.diag(p)[None, :]
        p[np.diag_indices_from(p)] = 0.0
        # C order: sparse @ dense copies a Fortran-ordered operand on every call
        return np.ascontiguousarray(p, dtype=np.float32)

    @property
    def n_items(self) -> int:
        return int(self.n_items_)

    @property
    def zero_is_no_evidence(self) -> bool:
        """True: B = I − P / diag(P) with P the inverse of a Gram matrix that is block-diagonal
        over the connected components of the item co-occurrence graph, so P (Cholesky and its
        inverse fill in only within a block) and B are exactly 0 between components. A history
        scores an item exactly 0 when no path joins them (or every weight on it is 0): a tie in
        index order, no evidence. Inside a component float32 can also round a far item's weight
        to exactly 0 (a long chain at a large λ): the item is dropped though a path exists, but
        what reaches it is below float32's resolution anyway; on ml-100k and diginetica no
        reachable item scored exactly 0 (0 of 503,029 and of 1,180 slots). The low-pass filter
        is 0 outside the graph's main component too, so the blend keeps that 0 where neither
        signal reaches; the rising factor lifts every score above 0, ordering such items by
        itself, as it is meant to."""
        return True

    def _spread(self, block: np.ndarray) -> np.ndarray:
        """Scores over kept items → over the whole catalogue (-inf elsewhere)."""
        if len(self.kept_) == self.n_items:
            return block
        out = np.full((block.shape[0], self.n_items), -np.inf, dtype=np.float32)
        out[:, self.kept_] = block
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        history = self.user_items_[users]
        if not self.user_recency_.shape[0]:
            return self._score_history(history)
        # user_recency_ has user_items_' structure (one weight per stored pair, ``pair_places``),
        # so the rows are weighed on their data before any column is cut: no sparse multiply and
        # no second column index, which cost ~0.8 ms a single user at 4k items (review rv30s F3)
        return self._score_weighed(history, self.user_recency_[users].data)

    def _score_history(self, history: sparse.csr_array) -> np.ndarray:
        rows = self._kept_rows(history)
        return self._scored(rows, rows)

    @property
    def weighs_recency(self) -> bool:
        return self.config.recency > 0

    def _score_places(self, history: sparse.csr_array, places: sparse.csr_array) -> np.ndarray:
        """A history scored at request time (a visitor's items, in serving's order) weighed as
        a known user's items are: by their places among the row's placed items
        (``history_places``); an item without a place counts 1, as the oldest would."""
        if not self.weighs_recency:
            return self._score_history(history)
        at = history_places(history, places)
        cfg = self.config
        weights = np.where(at > 0, recency_weight(at, cfg.recency, cfg.recency_half_places), 1.0)
        return self._score_weighed(history, weights)

    def _score_weighed(self, history: sparse.csr_array, weights: np.ndarray) -> np.ndarray:
        """Scores of ``history`` whose stored entries (in its order) count ``weights`` times
        their value (1 where the model is binary) in EASE's product and the filter's."""
        values = weights * (1.0 if self.config.binary else history.data)
        # a new array over ``history``'s index arrays, its data replaced: building it from the
        # three arrays re-checks indices ``history`` already holds (~15 µs a request)
        weighted = sparse.csr_array(history)
        weighted.data = values.astype(np.float32, copy=False)
        weighted = self._kept_columns(weighted)
        # only the Mult-DAE reads the plain rows: none built for it where it is off (~15 µs)
        return self._scored(
            self._kept_rows(history) if self.dae_ is not None else weighted, weighted
        )

    def _kept_rows(self, history: sparse.csr_array) -> sparse.csr_array:
        """``history``'s kept items' columns, each 1 where the model is binary."""
        rows = self._kept_columns(sparse.csr_array(history))
        if self.config.binary:  # a new array: ``history`` may be the caller's
            ones = np.ones_like(rows.data)
            rows = sparse.csr_array((ones, rows.indices, rows.indptr), shape=rows.shape)
        return rows

    def _kept_columns(self, rows: sparse.csr_array) -> sparse.csr_array:
        """``rows``' kept items' columns: ``rows`` itself where every item is kept, as scipy's
        column index costs O(catalogue) a call even then (and gives the same entries in the
        same order)."""
        return rows if len(self.kept_) == self.n_items else rows[:, self.kept_]

    def _scored(self, rows: sparse.csr_array, weighted: sparse.csr_array) -> np.ndarray:
        """Scores of ``rows`` (kept items' columns) over the catalogue: EASE's product and the
        low-pass filter's read ``weighted`` (the rows under the recency weights, or the rows
        themselves), the Mult-DAE the plain rows it was trained on."""
        scores = np.asarray(weighted @ self.weights_, dtype=np.float32)
        if self.lowpass_left_.size:
            low = np.asarray(weighted @ self.lowpass_left_) @ self.lowpass_right_
            scores = blended(scores, low, self.config.lowpass)
        if len(self.rising_):
            scores = np.maximum(scores, RISING_FLOOR) * self.rising_
        if self.dae_ is not None:  # after the factor: its centred logits are < 0 for ~half
            scores = blended(scores, self.dae_.centred_logits(rows), self.config.autoencoder)
        return self._spread(scores)

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.kept_, items)
        inside = (pos < len(self.kept_)) & (
            self.kept_[np.minimum(pos, len(self.kept_) - 1)] == items
        )
        block = np.full((len(items), len(self.kept_)), -np.inf, dtype=np.float32)
        block[inside] = self.weights_[pos[inside]]
        if self.lowpass_left_.size:  # the item as a one-item history, as a user's is scored
            low = self.lowpass_left_[pos[inside]] @ self.lowpass_right_
            block[inside] = blended(block[inside], low, self.config.lowpass)
        if self.dae_ is not None:
            one = sparse.csr_array(
                (np.ones(inside.sum(), np.float32), (np.arange(inside.sum()), pos[inside])),
                shape=(int(inside.sum()), len(self.kept_)),
            )
            block[inside] = blended(
                block[inside], self.dae_.centred_logits(one), self.config.autoencoder
            )
        return self._spread(block)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "weights_": self.weights_,
            "kept_": self.kept_,
            "rising_": self.rising_,
            "lowpass_left_": self.lowpass_left_,
            "lowpass_right_": self.lowpass_right_,
            **(self.dae_.arrays() if self.dae_ is not None else {}),
            "n_items_": self.n_items_,
            **sparse_to_arrays("user_items_", self.user_items_),
            **sparse_to_arrays("user_recency_", self.user_recency_),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_items_ = sparse_from_arrays("user_items_", arrays)
        self.user_recency_ = (  # a release saved before the weights: none
            sparse_from_arrays("user_recency_", arrays)
            if "user_recency_shape" in arrays
            else sparse.csr_array((0, 0), dtype=np.float32)
        )
        self.rising_ = np.empty(0, np.float32)  # releases saved before the factor existed
        self.lowpass_left_ = np.empty((0, 0), np.float32)  # … or before the low-pass filter
        self.lowpass_right_ = np.empty((0, 0), np.float32)
        self.dae_ = MultDAE.from_arrays(arrays)
        super()._restore({k: v for k, v in arrays.items() if k not in ARRAY_NAMES})
