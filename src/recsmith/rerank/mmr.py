"""Maximal marginal relevance: diversify each query's list by penalising near-duplicates.

Greedy, per query: pick the item maximising ``λ·relevance − (1 − λ)·max similarity to the items
already picked``, ``k`` times (Carbonell & Goldstein, 1998). Relevance is min-max normalised per
query first, so λ means the same trade-off whatever the score scale; λ = 1 is the relevance order,
λ = 0 picks the item least like anything picked so far (ties: the more relevant).

The greedy steps are inherently sequential, but queries are independent, so each step runs for all
queries of a batch at once: one grouped argmax over the flat rows (``maximum.reduceat`` over the
query segments) and one paired-similarity update. Cost: O(k · rows) numpy work per batch and no
Python loop over queries; batches are processed in chunks of rows only to bound the memory of
gathering embedding rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import sparse

from recsmith.rerank.placement import group_rank, place
from recsmith.retrieval.candidates import Candidates


class Similarity(Protocol):
    """Item-to-item similarity, asked for aligned pairs (vectorised, no matrix per query)."""

    def paired(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """float64 [len(a)]: similarity of items ``a[i]`` and ``b[i]``."""
        ...


@dataclass(frozen=True, slots=True)
class CategorySimilarity:
    """1 when two items share a primary category, else 0; items without one are like nothing."""

    category: np.ndarray  # int32 [n_items], -1 = none (``ItemTable.category``)

    def paired(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ca = self.category[a]
        return ((ca == self.category[b]) & (ca >= 0)).astype(np.float64)


@dataclass(frozen=True, slots=True)
class EmbeddingSimilarity:
    """Cosine similarity of item vectors: dense (ALS factors) or sparse rows (TF-IDF). Build with
    ``cosine`` so rows are normalised once, not at every step; all-zero rows are like nothing."""

    vectors: np.ndarray | sparse.csr_array  # [n_items, dim], rows of norm 1 or 0

    @classmethod
    def cosine(cls, vectors: np.ndarray | sparse.sparray | sparse.spmatrix) -> EmbeddingSimilarity:
        if sparse.issparse(vectors):
            v = sparse.csr_array(vectors, dtype=np.float64)
            norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=1)).ravel())
            scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            return cls((sparse.diags_array(scale) @ v).tocsr())
        v = np.asarray(vectors, np.float64)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return cls(np.divide(v, norms, out=np.zeros_like(v), where=norms > 0))

    def paired(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if isinstance(self.vectors, np.ndarray):
            return np.einsum("ij,ij->i", self.vectors[a], self.vectors[b])
        return np.asarray(self.vectors[a].multiply(self.vectors[b]).sum(axis=1)).ravel()


def _normalise(relevance: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Min-max per query segment; non-finite values rank last; a constant query becomes all 1."""
    rel = np.asarray(relevance, np.float64)
    finite = np.isfinite(rel)
    if not finite.all():
        low = rel[finite].min() - 1.0 if finite.any() else 0.0
        rel = np.where(finite, rel, low)
    lo = np.repeat(np.minimum.reduceat(rel, starts), lengths)
    span = np.repeat(np.maximum.reduceat(rel, starts), lengths) - lo
    return np.divide(rel - lo, span, out=np.ones_like(rel), where=span > 0)


@dataclass(frozen=True, slots=True)
class MMR:
    """An MMR selector (``placement.Selector``): plugs into ``RulePlan.apply``, where pinned rows
    are *seeds* (already picked: they count for similarity and for the category cap)."""

    lam: float
    similarity: Similarity
    max_rows: int = 1 << 18

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"MMR lambda must be within [0, 1], got {self.lam}")

    def __call__(
        self,
        *,
        query: np.ndarray,
        items: np.ndarray,
        relevance: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> np.ndarray:
        """Rows picked, grouped by query, in pick order (at most ``k`` minus the query's seeds)."""
        if len(query) == 0 or k <= 0:
            return np.zeros(0, np.int64)
        n_queries = int(query[-1]) + 1
        bounds = np.searchsorted(query, np.arange(n_queries + 1))
        out, q0 = [np.zeros(0, np.int64)], 0
        while q0 < n_queries:  # chunks of whole queries with about max_rows rows
            q1 = int(np.searchsorted(bounds, bounds[q0] + self.max_rows, side="right")) - 1
            q1 = min(max(q1, q0 + 1), n_queries)
            lo, hi = int(bounds[q0]), int(bounds[q1])
            rows = slice(lo, hi)
            if hi > lo:
                picked = self._chunk(
                    query[rows] - q0,
                    items[rows],
                    relevance[rows],
                    is_seed[rows],
                    group[rows],
                    cap,
                    k,
                )
                out.append(picked + lo)
            q0 = q1
        return np.concatenate(out)

    def _chunk(
        self,
        qr: np.ndarray,
        items: np.ndarray,
        relevance: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> np.ndarray:
        n, n_q = len(qr), int(qr[-1]) + 1
        starts = np.searchsorted(qr, np.arange(n_q))
        nonempty = np.flatnonzero(np.diff(np.append(starts, n)) > 0)
        seg_starts = starts[nonempty]
        seg_lengths = np.diff(np.append(seg_starts, n))
        rel = _normalise(relevance, seg_starts, seg_lengths)
        need = np.clip(k - np.bincount(qr[is_seed], minlength=n_q), 0, None)
        taken = is_seed.copy()
        max_sim = np.full(n, -np.inf)
        same_group = np.zeros(n, np.int64)

        def absorb(chosen: np.ndarray) -> None:
            """Update every still-free row of a query with the row just picked in it."""
            upd = np.flatnonzero((chosen[qr] >= 0) & ~taken)
            other = chosen[qr[upd]]
            if self.lam < 1.0:
                sim = self.similarity.paired(items[upd], items[other])
                max_sim[upd] = np.maximum(max_sim[upd], sim)
            if cap is not None:
                same_group[upd] += (group[upd] == group[other]) & (group[upd] >= 0)

        seeds = np.flatnonzero(is_seed)
        seed_rank = group_rank(qr[seeds])
        for s in range(int(seed_rank.max(initial=-1)) + 1):
            chosen = np.full(n_q, -1, np.int64)
            chosen[qr[seeds[seed_rank == s]]] = seeds[seed_rank == s]
            absorb(chosen)

        picks, steps, idx = [], [], np.arange(n)
        for step in range(k):
            eligible = ~taken & (need[qr] > step)
            if cap is not None:
                eligible &= (group < 0) | (same_group < cap)
            if not eligible.any():
                break
            penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
            score = np.where(eligible, self.lam * rel - (1.0 - self.lam) * penalty, -np.inf)
            best = np.repeat(np.maximum.reduceat(score, seg_starts), seg_lengths)
            hit = np.where((score == best) & (best > -np.inf), idx, n)
            first = np.minimum.reduceat(hit, seg_starts)
            chosen = np.full(n_q, -1, np.int64)
            chosen[nonempty] = np.where(first < n, first, -1)
            rows = chosen[chosen >= 0]
            taken[rows] = True
            picks.append(rows)
            steps.append(np.full(len(rows), step))
            absorb(chosen)
        if not picks:
            return np.zeros(0, np.int64)
        rows, step_of = np.concatenate(picks), np.concatenate(steps)
        return rows[np.lexsort((step_of, qr[rows]))]


def mmr(
    cands: Candidates,
    *,
    k: int,
    lam: float,
    similarity: Similarity,
    relevance: np.ndarray | None = None,
) -> Candidates:
    """MMR on its own: the top ``k`` of every query, diversified (``relevance`` defaults to
    ``cands.score``). Rows keep their scores; the row order is the MMR order."""
    rel = cands.score if relevance is None else relevance
    none = np.zeros(len(cands), bool)
    chosen = MMR(lam, similarity)(
        query=cands.query,
        items=cands.items,
        relevance=rel,
        is_seed=none,
        group=np.full(len(cands), -1, np.int32),
        cap=None,
        k=k,
    )
    return cands.take(place(cands.query, np.zeros(0, np.int64), np.zeros(0), chosen, k))
