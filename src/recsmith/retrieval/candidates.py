"""Candidates: the one currency between retrieval, ranking and re-ranking.

A columnar table for a *batch* of queries (one request online, thousands of users offline), so the
same vectorised code serves both: row r proposes ``items[r]`` for query ``query[r]`` with a fused
``score[r]``, and ``source_scores[r, s]`` / ``source_ranks[r, s]`` keep what each source said (NaN
and 0 where a source did not propose the item) — the ranker's features and the response's reasons.
Rows are grouped by query and, within a query, ordered best first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsmith.models.topk import KEY_SORT_ROWS, best_first

__all__ = ["KEY_SORT_ROWS", "Candidates", "best_first"]


@dataclass(frozen=True, slots=True)
class Candidates:
    """See module docstring. Built by ``retrieval.merge.merge`` (and grown by ``append_below``),
    by ``empty``, or by the constructor itself where columns are at hand (training's and
    explanations' tables); reorderings and subsets come from the methods below."""

    n_queries: int
    sources: tuple[str, ...]
    query: np.ndarray  # int32 [n]
    items: np.ndarray  # int32 [n]
    score: np.ndarray  # float32 [n]: the current ordering score (retrieval, then ranking)
    source_scores: np.ndarray  # float32 [n, n_sources]; NaN = not proposed by that source
    source_ranks: np.ndarray  # int16 [n, n_sources]; 1 = that source's best, 0 = not proposed
    #: every (query, item) pair is known to be one row: ``merge`` emits one row a pair, and
    #: ``append_below`` adds pairs not held yet, each once; a reordering of all rows keeps it
    #: (``with_scores``, ``rescored``, ``reordered``), and so does keeping some rows once each
    #: (``where``, ``top``); ``take``, which may repeat a row, does not. Lets
    #: re-ranking skip its duplicate check (60 µs for a batch of 16's 4,756 rows); False
    #: (unknown) is always safe
    distinct: bool = False

    @classmethod
    def empty(cls, n_queries: int, sources: Sequence[str] = ()) -> Candidates:
        s = len(sources)
        return cls(
            n_queries,
            tuple(sources),
            np.zeros(0, np.int32),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.zeros((0, s), np.float32),
            np.zeros((0, s), np.int16),
        )

    def __len__(self) -> int:
        return len(self.items)

    def bounds(self) -> np.ndarray:
        """Row offsets per query: rows of query q are ``bounds[q]:bounds[q + 1]``."""
        return self.query.searchsorted(np.arange(self.n_queries + 1)).astype(np.int64)

    def take(self, rows: np.ndarray) -> Candidates:
        """A subset of rows (kept in the given order)."""
        return self._rows(rows, self.score[rows])

    def where(self, keep: np.ndarray) -> Candidates:
        """The rows where ``keep`` (bool per row) holds, in their order: each row at most once,
        so rows known ``distinct`` stay so (a cold user's rows dropped from a batch, a
        contextual arm's source's rows), and re-ranking still skips its duplicate check."""
        rows = np.flatnonzero(keep)
        return self._rows(rows, self.score.take(rows), self.distinct)

    def with_scores(self, score: np.ndarray) -> Candidates:
        """New ordering scores; rows are re-sorted best first within each query."""
        score = np.asarray(score, np.float32)
        order = best_first(self.query, score)
        return self._rows(order, score[order], self.distinct)

    def reordered(self, order: np.ndarray) -> Candidates:
        """Every row, in ``order`` (a permutation of them), with its score: what holds of the
        set of rows (``distinct``) still holds."""
        return self._rows(order, self.score[order], self.distinct)

    def rescored(self, score: np.ndarray) -> Candidates:
        """What ``with_scores(score)`` gives for these rows in their fused order (best first by
        ``self.score``, ties in row order), for rows ``merge(ordered=False)`` left unsorted: the
        ranker's scores, where the fused order only breaks ties. One sort by ``score``; then
        only the rows in runs of equal scores within a query (NaN beside NaN; ~17 % of a batch
        of 64's 16,500 rows on the 100k-item shop) are sorted by the fused score, in place of
        a fused sort and a gather of every column over all rows (~0.5 ms there). Below
        ``KEY_SORT_ROWS`` rows (one query's few hundred) the two sorts run as before."""
        score = np.asarray(score, np.float32)
        # imported here: the kernel's module imports this one
        from recsmith.ranking import row_kernel

        library = row_kernel.ready()  # once loaded, one compiled pass (numpy's below: its oracle)
        built = None if library is None else row_kernel.rescored_rows(library, self, score)
        return built if built is not None else self._numpy_rescored(score)

    def _numpy_rescored(self, score: np.ndarray) -> Candidates:
        """``rescored`` by numpy: until the compiled pass is loaded, and where it declines."""
        if len(score) < KEY_SORT_ROWS:  # a lone request's rows: two lexsorts cost less
            fused = best_first(self.query, self.score)
            return self.reordered(fused).with_scores(score[fused])
        order = best_first(self.query, score)
        query, ordered = self.query[order], score[order]
        same = (query[1:] == query[:-1]) & (
            (ordered[1:] == ordered[:-1]) | (np.isnan(ordered[1:]) & np.isnan(ordered[:-1]))
        )
        if same.any():
            run = np.cumsum(np.concatenate([[True], ~same]))  # sorted rows' tie runs, numbered
            tied = np.flatnonzero(np.concatenate([same, [False]]) | np.concatenate([[False], same]))
            # a run's rows are still in row order: best_first breaks fused ties in that order
            order[tied] = order[tied[best_first(run[tied], self.score[order[tied]])]]
        return self._rows(order, score[order], self.distinct)

    def _rows(self, rows: np.ndarray, score: np.ndarray, distinct: bool = False) -> Candidates:
        """The rows ``rows`` with ``score`` as their scores, built by the constructor itself:
        ``dataclasses.replace`` walks the fields on every call (~10 µs against ~5), and a
        request takes rows about ten times. Gathered with ``ndarray.take``: on the two
        per-source columns (``[n, sources]``) numpy's fancy index ``a[rows]`` costs ~12 times
        as much (167 against 14 µs for a batch of 64 queries' 16,500 rows), six calls a batch."""
        rows = np.asarray(rows)
        if rows.dtype == bool:  # a mask: ``take`` would read it as the indices 0 and 1
            rows = np.flatnonzero(rows)
        elif rows.dtype.kind not in "iu":  # e.g. an empty list, read by numpy as float64
            rows = rows.astype(np.intp)
        return Candidates(
            self.n_queries,
            self.sources,
            self.query.take(rows),
            self.items.take(rows),
            score,
            self.source_scores.take(rows, axis=0),
            self.source_ranks.take(rows, axis=0),
            distinct,
        )

    def top(self, k: int) -> Candidates:
        """The first ``k`` rows of every query."""
        starts = self.bounds()[:-1]
        rank = np.arange(len(self)) - starts[self.query]
        return self.where(rank < k)

    def source_names(self) -> list[list[str]]:
        """Per row, which sources proposed its item (for explanations). Rows share a handful of
        source sets, so the names are spelled once per distinct set (a bit mask of the sources)
        rather than by a pass over every row's sources; each row gets its own list."""
        flags = np.int64(1) << np.arange(len(self.sources), dtype=np.int64)
        bits = (self.source_ranks > 0) @ flags
        names = {
            mask: [s for b, s in enumerate(self.sources) if mask >> b & 1]
            for mask in np.unique(bits).tolist()
        }
        return [names[mask].copy() for mask in bits.tolist()]
