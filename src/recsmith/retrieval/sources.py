"""Candidate sources: each proposes up to ``k`` items per query with its own scores.

Any trained model is a source: for a known user it recommends from the user's history, for an
anonymous visitor (or with ``use = "recent"``) from the items of the current session, if the model
can score item histories. Static sources (popular, trending, new arrivals) rank the catalogue once
and hand every query the best items it has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from scipy import sparse

from recsmith.models.base import Recommender
from recsmith.models.topk import TopK, top_k
from recsmith.retrieval.queries import Queries


@dataclass(frozen=True, slots=True)
class Proposals:
    """What one source proposes: flat rows (query, item, score, rank), best first per query."""

    query: np.ndarray  # int32
    items: np.ndarray  # int32
    scores: np.ndarray  # float32
    ranks: np.ndarray  # int16, 1 = best


class CandidateSource(Protocol):
    """Anything that proposes items for a batch of queries."""

    name: str

    def retrieve(self, queries: Queries, k: int) -> Proposals: ...


def flatten(top: TopK, query_index: np.ndarray) -> Proposals:
    """TopK rows (−1 padded) of the queries ``query_index`` → flat proposals."""
    valid = top.ids >= 0
    rows, cols = np.nonzero(valid)
    return Proposals(
        query_index[rows].astype(np.int32),
        top.ids[rows, cols].astype(np.int32),
        top.scores[rows, cols].astype(np.float32),
        (cols + 1).astype(np.int16),
    )


def concat(parts: list[Proposals]) -> Proposals:
    parts = [p for p in parts if len(p.items)] or parts[:1]
    if not parts:
        empty_i = np.zeros(0, np.int32)
        return Proposals(empty_i, empty_i, np.zeros(0, np.float32), np.zeros(0, np.int16))
    return Proposals(
        *(
            np.concatenate(cols)
            for cols in zip(*((p.query, p.items, p.scores, p.ranks) for p in parts), strict=True)
        )
    )


@dataclass(frozen=True, slots=True)
class ModelSource:
    """A trained model as a source. ``use``: "auto" answers known users from their history and
    visitors from their recent items; "recent" always scores the recent items (item-to-item)."""

    name: str
    model: Recommender
    use: Literal["auto", "recent"] = "auto"

    def retrieve(self, queries: Queries, k: int) -> Proposals:
        n = len(queries)
        by_user = (queries.users >= 0) if self.use == "auto" else np.zeros(n, dtype=bool)
        has_recent = np.diff(queries.recent.indptr) > 0
        by_items = ~by_user & has_recent if self.model.scores_histories else np.zeros(n, bool)
        parts = []
        if by_user.any():
            rows = np.flatnonzero(by_user)
            top = self.model.recommend(queries.users[rows], k, exclude=queries.exclude[rows])
            parts.append(flatten(top, rows))
        if by_items.any():
            rows = np.flatnonzero(by_items)
            history = queries.recent[rows]
            if self.model.item_to_item is not None:  # rank only items with a score
                top = self.model.sparse_from_items(history, k, queries.exclude[rows])
            else:
                exclude = (queries.exclude[rows] + history).tocsr()
                top = _drop_excluded(
                    self.model.recommend_from_items(history, k + _max_row(exclude)), exclude, k
                )
            parts.append(flatten(top, rows))
        return concat(parts)


class StaticSource:
    """The same ranking for everyone (popular, trending, new arrivals), minus what each query
    excludes. ``item_scores`` −inf marks items never proposed. The catalogue is ranked once, at
    construction, so a request only walks the head of that order."""

    def __init__(self, name: str, item_scores: np.ndarray) -> None:
        self.name = name
        self.item_scores = np.asarray(item_scores, dtype=np.float32)
        finite = np.flatnonzero(np.isfinite(self.item_scores))
        self.order = finite[np.argsort(-self.item_scores[finite], kind="stable")]

    def retrieve(self, queries: Queries, k: int) -> Proposals:
        n = len(queries)
        prefix = self.order[: k + _max_row(queries.exclude)]
        if n == 0 or len(prefix) == 0:  # nothing rankable (e.g. no creation dates)
            return concat([])
        scores = np.tile(self.item_scores[prefix], (n, 1))
        excluded = queries.exclude[:, prefix].toarray() > 0
        scores[excluded] = -np.inf
        best = top_k(scores, k)
        ids = np.where(best.ids >= 0, prefix[np.maximum(best.ids, 0)], -1).astype(np.int32)
        return flatten(TopK(ids, best.scores), np.arange(n))


def _max_row(matrix: sparse.csr_array) -> int:
    return int(np.diff(matrix.indptr).max()) if matrix.shape[0] else 0


def _drop_excluded(top: TopK, exclude: sparse.csr_array, k: int) -> TopK:
    """Mask excluded items out of over-fetched lists and keep the best ``k``."""
    ids = top.ids.copy()
    scores = top.scores.copy()
    rows, cols = np.nonzero(ids >= 0)
    hit = exclude[rows, ids[rows, cols]] > 0
    ids[rows[hit], cols[hit]] = -1
    scores[rows[hit], cols[hit]] = -np.inf
    return top_k_rows(ids, scores, k)


def top_k_rows(ids: np.ndarray, scores: np.ndarray, k: int) -> TopK:
    """Re-pick the best ``k`` of each row of (ids, scores), −1/−inf entries last."""
    best = top_k(scores, k)
    picked = np.take_along_axis(ids, np.maximum(best.ids, 0), axis=1)
    return TopK(np.where(best.ids >= 0, picked, -1).astype(np.int32), best.scores)
