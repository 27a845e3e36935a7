"""Non-personalised baselines: ``popular`` (all-time) and ``trending`` (recency-decayed).

They are also the fallback for users the personalised models do not know, so they must never fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions, decay_factors
from recsmith.models.base import _CELLS_PER_CHUNK, ModelConfig, Recommender
from recsmith.models.derived import Derivation
from recsmith.models.topk import Kernel, TopK, top_k


class PopularConfig(ModelConfig):
    """``half_life_days`` None counts distinct users per item; a number counts decayed events."""

    half_life_days: float | None = Field(None, gt=0)


class TrendingConfig(PopularConfig):
    half_life_days: float | None = Field(7.0, gt=0)


def _best_first(scores: np.ndarray) -> np.ndarray:
    """Item indices by score from high to low, ties by lower index first."""
    return np.argsort(-scores, kind="stable")


def _inverse(order: np.ndarray) -> np.ndarray:
    """Each item's position in ``order``."""
    positions = np.empty(len(order), np.int64)
    positions[order] = np.arange(len(order))
    return positions


#: Popularity's order of the items and each item's place in it: derived once per fitted scores
#: and written into the release (``Derivation``); the positions from the order, so after it.
_ORDER = Derivation("order", lambda model: model.item_scores_, _best_first)
_POSITIONS = Derivation("positions", lambda model: model._order(), _inverse)


class Popular(Recommender):
    """Items ranked by how many users interacted with them (or by decayed event counts).

    Equal counts are common (every item seen by one user) and must order the same everywhere:
    ties go to the lower item index by an exact rank, not by a tiny float term that float32 loses
    once counts exceed a few units (issue #3: numpy versions then ordered tied items differently).
    The reported scores stay the counts."""

    name = "popular"
    Config = PopularConfig
    config: PopularConfig
    derivations = (_ORDER, _POSITIONS)
    item_scores_: np.ndarray

    def fit(self, data: Interactions) -> Self:
        if self.config.half_life_days is None:
            counts = np.bincount(data.matrix.indices, minlength=data.n_items)
        else:
            decay = decay_factors(data.event_ts, data.reference_ts, self.config.half_life_days)
            counts = np.bincount(data.event_items, weights=decay, minlength=data.n_items)
        self.item_scores_ = counts.astype(np.float32)
        return self

    def _order(self) -> np.ndarray:
        """Item indices best first, ties by lower index first: the one order of every list,
        sorted once per fitted scores (``derived``), not on every request (issue #19)."""
        return _ORDER.of(self)

    def _positions(self) -> np.ndarray:
        """Each item's position in ``_order`` (0 for the best item)."""
        return _POSITIONS.of(self)

    def _rank_scores(self) -> np.ndarray:
        """n_items for the best item down to 1 for the last, ties by lower index first: distinct
        and exact in float64, so any top-k kernel orders them the same way."""
        return (self.n_items - self._positions()).astype(np.float64)

    def _masked_top_k(
        self,
        users: np.ndarray,
        k: int,
        exclude: sparse.csr_array | None,
        allowed: np.ndarray | None,
        blocked: np.ndarray | None,
    ) -> TopK:
        """Every row's list is ``_order`` less the row's masked items, so its top ``k`` are the
        first ``k`` of the order that no mask removes. A row excludes at most its own entries,
        so the first ``k`` + (most entries in a row) items the shared masks let through hold
        every row's list: rows × that many cells, not a dense row over the catalogue and its
        top-k per request. One row with a long history widens every row's search, so the rows
        go in chunks of at most ``_CELLS_PER_CHUNK`` cells, as the dense path's do. The lists
        are the dense path's (``Recommender._masked_top_k``)."""
        n_rows, k = len(users), max(k, 0)
        per_row = np.diff(exclude.indptr) if exclude is not None else np.zeros(0, np.int64)
        at = self._listable(k + int(per_row.max(initial=0)), allowed, blocked)
        ids = np.full((n_rows, k), -1, dtype=np.int32)
        scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
        step = max(1, _CELLS_PER_CHUNK // max(len(at), 1))
        for start in range(0, n_rows, step):
            stop = min(start + step, n_rows)
            rows = exclude[start:stop] if exclude is not None else None
            self._place(at, k, rows, ids[start:stop], scores[start:stop])
        return TopK(ids, scores)

    def _place(
        self,
        at: np.ndarray,
        k: int,
        exclude: sparse.csr_array | None,
        ids: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        """Write into ``ids`` and ``scores`` each row's first ``k`` of the listable positions
        ``at`` that its ``exclude`` row does not name."""
        n_rows = len(ids)
        ok = np.ones((n_rows, len(at)), dtype=bool)
        if exclude is not None and len(at) and exclude.nnz:  # each excluded item's column
            position = self._positions()[exclude.indices]
            column = np.minimum(np.searchsorted(at, position), len(at) - 1)
            hit = at[column] == position
            rows = np.repeat(np.arange(n_rows), np.diff(exclude.indptr))
            ok[rows[hit], column[hit]] = False
        found = np.cumsum(ok, axis=1, dtype=np.int32)
        r, c = np.nonzero(ok & (found <= k))
        items = self._order()[at[c]]
        ids[r, found[r, c] - 1] = items
        scores[r, found[r, c] - 1] = self.item_scores_[items]

    def _listable(
        self, n: int, allowed: np.ndarray | None, blocked: np.ndarray | None
    ) -> np.ndarray:
        """Positions in ``_order`` of its first ``n`` items that every row may list (a finite
        score, among ``allowed``, not ``blocked``): searched on a prefix of the order that grows
        (×4) until it holds ``n`` or is the whole catalogue."""
        order = self._order()
        width = min(max(4 * n, 64), len(order))
        while True:
            prefix = order[:width]
            ok = ~np.isneginf(self.item_scores_[prefix])
            if allowed is not None:
                ok &= allowed[prefix]
            if blocked is not None:
                ok &= ~blocked[prefix]
            at = np.flatnonzero(ok)
            if len(at) >= n or width == len(order):
                return at[:n]
            width = min(4 * width, len(order))

    def _chunked_top_k(
        self, n_rows: int, block: Callable[[int, int], np.ndarray], k: int, kernel: Kernel = top_k
    ) -> TopK:
        """Top-k by exact rank (masked items stay at -inf), reported with the counts."""
        ranks = self._rank_scores()

        def ranked(start: int, stop: int) -> np.ndarray:
            return np.where(np.isneginf(block(start, stop)), -np.inf, ranks)

        top = super()._chunked_top_k(n_rows, ranked, k, kernel)
        found = top.ids >= 0
        scores = np.where(found, self.item_scores_[np.where(found, top.ids, 0)], -np.inf)
        return TopK(top.ids, scores.astype(np.float32))

    @property
    def n_items(self) -> int:
        return len(self.item_scores_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.item_scores_, (len(users), 1))

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        return np.tile(self.item_scores_, (len(items), 1))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_scores_": self.item_scores_}


class Trending(Popular):
    """Popularity with a short half-life: what is picking up now."""

    name = "trending"
    Config = TrendingConfig
