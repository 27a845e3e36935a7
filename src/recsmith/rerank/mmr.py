"""Maximal marginal relevance: diversify each query's list by penalising near-duplicates.

Greedy, per query: pick the item maximising ``λ·relevance − (1 − λ)·max similarity to the items
already picked``, ``k`` times (Carbonell & Goldstein, 1998). Relevance is min-max normalised per
query first, so λ means the same trade-off whatever the score scale; λ = 1 is the relevance order,
λ = 0 picks the item least like anything picked so far (ties: the more relevant).

The greedy steps are sequential, but queries are independent, so every step runs for a whole chunk
of queries at once on a padded grid (one query per row, its candidates along the columns): an
``argmax`` per row and one similarity block update (``similarity.py``). Cost: O(k · rows) numpy work
per chunk, no Python loop over queries or candidates. The only Python loop over queries is the
integer bookkeeping that cuts a batch into chunks of about ``max_cells`` grid cells, which bounds
the memory of the gathered embeddings whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from recsmith.rerank.placement import group_rank, place
from recsmith.rerank.similarity import Similarity
from recsmith.retrieval.candidates import Candidates


def _chunks(counts: np.ndarray, max_cells: int) -> Iterator[tuple[int, int]]:
    """Query ranges [start, stop) whose padded grid (queries × widest query) fits ``max_cells``."""
    start, width = 0, 0
    for q, count in enumerate(counts.tolist()):
        wider = max(width, count)
        if q > start and wider * (q - start + 1) > max_cells:
            yield start, q
            start, wider = q, count
        width = wider
    yield start, len(counts)


@dataclass(frozen=True, slots=True)
class MMR:
    """An MMR selector (``placement.Selector``): plugs into ``RulePlan.apply``, where pinned rows
    are *seeds* (already picked: they count for similarity and for the category cap)."""

    lam: float
    similarity: Similarity
    max_cells: int = 1 << 17

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
        bounds = np.searchsorted(query, np.arange(int(query[-1]) + 2))
        out = [np.zeros(0, np.int64)]
        for q0, q1 in _chunks(np.diff(bounds), self.max_cells):
            lo, hi = int(bounds[q0]), int(bounds[q1])
            if hi > lo:
                rows = slice(lo, hi)
                grid = _Grid(query[rows] - q0, bounds[q0 : q1 + 1] - lo)
                picked = self._chunk(
                    grid, items[rows], relevance[rows], is_seed[rows], group[rows], cap, k
                )
                out.append(picked + lo)
        return np.concatenate(out)

    def _chunk(
        self,
        grid: _Grid,
        items: np.ndarray,
        relevance: np.ndarray,
        is_seed: np.ndarray,
        group: np.ndarray,
        cap: int | None,
        k: int,
    ) -> np.ndarray:
        n_q, lam = grid.shape[0], self.lam
        rel = grid.normalised(relevance)
        grp = grid.spread(group, -1)
        taken = ~grid.spread(np.ones(len(items), bool), False) | grid.spread(is_seed, False)
        need = k - np.bincount(grid.row[is_seed], minlength=n_q)
        block = self.similarity.block(grid.spread(items, items[0])) if lam < 1.0 else None
        max_sim = np.zeros(grid.shape)  # max over an empty set: no penalty
        has_pick = np.zeros(n_q, bool)
        same = np.zeros(grid.shape, np.int32)

        def absorb(pick: np.ndarray) -> None:
            """Fold the cell just picked in every row into that row's penalties and cap counts."""
            ok = pick >= 0
            col = np.where(ok, pick, 0)
            if block is not None:
                sim = block.against(col)
                fresh = np.where(has_pick[:, None], np.maximum(max_sim, sim), sim)
                max_sim[:] = np.where(ok[:, None], fresh, max_sim)
            if cap is not None:
                g = grp[np.arange(n_q), col][:, None]
                same[:] += ok[:, None] & (grp == g) & (g >= 0)
            has_pick[:] |= ok

        seeds = np.flatnonzero(is_seed)
        seed_rank = group_rank(grid.row[seeds])
        for s in range(int(seed_rank.max(initial=-1)) + 1):
            pick = np.full(n_q, -1, np.int64)
            these = seeds[seed_rank == s]
            pick[grid.row[these]] = grid.col[these]
            absorb(pick)

        picks, base = [], lam * rel
        for step in range(k):
            eligible = ~taken & (need > step)[:, None]
            if cap is not None:
                eligible &= (grp < 0) | (same < cap)
            if not eligible.any():
                break
            score = np.where(eligible, base - (1.0 - lam) * max_sim, -np.inf)
            pick = np.argmax(score, axis=1)
            pick = np.where(eligible[np.arange(n_q), pick], pick, -1)
            live = np.flatnonzero(pick >= 0)
            taken[live, pick[live]] = True
            picks.append(grid.starts[live] + pick[live])  # queries in order, within a step
            absorb(pick)
        if not picks:
            return np.zeros(0, np.int64)
        rows = np.concatenate(picks)
        return rows[np.argsort(grid.row[rows], kind="stable")]  # by query, then pick order


@dataclass(frozen=True, slots=True, init=False)
class _Grid:
    """Flat rows (grouped by query) <-> padded cells [n_queries, widest query]."""

    row: np.ndarray
    col: np.ndarray
    starts: np.ndarray
    shape: tuple[int, int]

    def __init__(self, row: np.ndarray, bounds: np.ndarray) -> None:
        starts = np.asarray(bounds[:-1], np.int64)
        object.__setattr__(self, "row", row.astype(np.int64))
        object.__setattr__(self, "col", np.arange(len(row)) - starts[row])
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "shape", (len(starts), int(np.diff(bounds).max())))

    def spread(self, values: np.ndarray, fill: object) -> np.ndarray:
        out = np.full(self.shape, fill, dtype=np.asarray(values).dtype)
        out[self.row, self.col] = values
        return out

    def normalised(self, relevance: np.ndarray) -> np.ndarray:
        """Min-max per query; non-finite values rank last; a constant query becomes all 1."""
        rel = np.asarray(relevance, np.float64)
        finite = np.isfinite(rel)
        if not finite.all():
            rel = np.where(finite, rel, rel[finite].min() - 1.0 if finite.any() else 0.0)
        lo = self.spread(rel, np.inf).min(axis=1)[self.row]
        span = self.spread(rel, -np.inf).max(axis=1)[self.row] - lo
        flat = np.divide(rel - lo, span, out=np.ones_like(rel), where=span > 0)
        return self.spread(flat, 0.0)


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
    chosen = MMR(lam, similarity)(
        query=cands.query,
        items=cands.items,
        relevance=rel,
        is_seed=np.zeros(len(cands), bool),
        group=np.full(len(cands), -1, np.int32),
        cap=None,
        k=k,
    )
    return cands.take(place(cands.query, np.zeros(0, np.int64), np.zeros(0), chosen, k))
