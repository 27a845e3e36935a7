"""Placement: the last cut of a re-ranked list — category caps, pinned slots, at most ``k`` rows.

Everything here is vectorised over the whole batch (one request or thousands of users offline):
per-query questions ("how many items of this category came before?", "which slot is free?") become
grouped counts over sorted keys, so the cost is O(rows · log rows) with no Python loop over queries
or positions.

Vocabulary: rows arrive grouped by query and sorted best first. *Seeds* are pinned rows, with the
0-based slot they must take; *chosen* rows are the rest, in the order a selector (relevance order or
MMR) picked them.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from recsmith.digit_sort import stable_argsort


class Selector(Protocol):
    """Orders the non-seed rows of every query (grouped by query in ascending order, each query's
    rows chosen first to last).

    It may return any subset of them, but must drop rows that would break ``cap`` given the seeds
    (seeds are counted first), and need not return more than ``k`` minus the query's seeds.
    """

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
    ) -> np.ndarray: ...


def group_rank(keys: np.ndarray) -> np.ndarray:
    """0-based position of each element among the elements with the same key, in array order (a
    grouped cumulative count)."""
    n = len(keys)
    order = stable_argsort(keys)
    sorted_keys = keys[order]
    starts = np.ones(n, bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    idx = np.arange(n)
    ranks = np.empty(n, np.int64)
    ranks[order] = idx - np.maximum.accumulate(np.where(starts, idx, 0))
    return ranks


def pair_key(query: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One int64 per (query, group) pair, for grouped counts over both."""
    return (query.astype(np.int64) << 32) + (group.astype(np.int64) + 1)


#: Rows from which ``first_occurrence`` first asks ``distinct_in_queries``: below, the grouped
#: count costs less than the check (13 against 26 µs for one query's 260 rows; 85 against 60
#: at 4,160, 616 against 182 at 16,640).
DISTINCT_CHECK_ROWS = 2048


def first_occurrence(query: np.ndarray, items: np.ndarray) -> np.ndarray:
    """bool mask of the first row of every (query, item) pair: a merge upstream that proposed an
    item twice must not make it appear twice."""
    if len(query) >= DISTINCT_CHECK_ROWS and distinct_in_queries(query, items):
        return np.ones(len(query), bool)  # as merge emits them: every row is a first
    return group_rank(pair_key(query, items)) == 0


def distinct_in_queries(query: np.ndarray, items: np.ndarray) -> bool:
    """Whether no (query, item) pair repeats, answered for rows grouped by query (ascending;
    False, "not known", otherwise): each query's items sorted in a row of a padded grid and
    compared with their neighbours. Sorting a few hundred items per row is far cheaper than
    the grouped count over the whole batch's pair keys (a sort of 16,500 64-bit keys at 64
    queries) that ``first_occurrence`` would otherwise pay to find no duplicate: 155 against
    510 µs there."""
    n = len(query)
    if n < 2:
        return True
    if (query[1:] < query[:-1]).any():
        return False
    starts = np.flatnonzero(np.concatenate([[True], query[1:] != query[:-1]]))
    lengths = np.diff(np.append(starts, n))
    if len(starts) * int(lengths.max()) > 1 << 22:  # an offline batch: the grouped count
        return False
    pad = int(items.min()) - 1  # below every item: sorts first, and never equal to one
    small = np.iinfo(np.int32).min <= pad and int(items.max()) <= np.iinfo(np.int32).max
    # 32-bit rows where they hold the items: numpy sorts them in ~60 % of 64-bit rows' time
    grid = np.full((len(starts), int(lengths.max())), pad, np.int32 if small else np.int64)
    run = np.repeat(np.arange(len(starts)), lengths)
    grid[run, np.arange(n) - starts[run]] = items
    grid.sort(axis=1)
    return not ((grid[:, 1:] == grid[:, :-1]) & (grid[:, 1:] != pad)).any()


def rank_in_query(query: np.ndarray, n_queries: int) -> np.ndarray:
    """0-based position of every row within its query (rows grouped by query)."""
    starts = np.searchsorted(query, np.arange(n_queries))
    return np.arange(len(query)) - starts[query]


def seeds_over_cap(
    query: np.ndarray, group: np.ndarray, slot: np.ndarray, cap: int | None
) -> np.ndarray:
    """bool mask of pinned rows that the cap refuses: pins of one category beyond ``cap`` in the
    same query, later slots losing (a pin never lifts the cap)."""
    over = np.zeros(len(query), bool)
    seeds = np.flatnonzero(slot >= 0)
    if cap is None or len(seeds) == 0:
        return over
    seeds = seeds[np.lexsort((slot[seeds], query[seeds]))]
    counted = group[seeds] >= 0
    over[seeds] = counted & (group_rank(pair_key(query[seeds], group[seeds])) >= cap)
    return over


def seed_counts(
    query: np.ndarray, group: np.ndarray, is_seed: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """For each of ``rows``: how many seeds of its query share its group."""
    if not is_seed.any():
        return np.zeros(len(rows), np.int64)
    seed_keys, counts = np.unique(pair_key(query[is_seed], group[is_seed]), return_counts=True)
    keys = pair_key(query[rows], group[rows])
    pos = np.searchsorted(seed_keys, keys).clip(max=len(seed_keys) - 1)
    return np.where(seed_keys[pos] == keys, counts[pos], 0)


def select_by_relevance(
    *,
    query: np.ndarray,
    items: np.ndarray,
    relevance: np.ndarray,
    is_seed: np.ndarray,
    group: np.ndarray,
    cap: int | None,
    k: int,
) -> np.ndarray:
    """The plain selector: non-seed rows in their (relevance) order, minus those over the cap."""
    del items, relevance, k  # the rows are already in relevance order; ``place`` cuts to k
    rows = np.flatnonzero(~is_seed)
    if cap is None or len(rows) == 0:
        return rows
    before = seed_counts(query, group, is_seed, rows)
    before = before + group_rank(pair_key(query[rows], group[rows]))
    return rows[(group[rows] < 0) | (before < cap)]


def place(
    query: np.ndarray, seeds: np.ndarray, slots: np.ndarray, chosen: np.ndarray, k: int
) -> np.ndarray:
    """Row indices in display order, at most ``k`` per query.

    Chosen rows fill the slots that pins leave free, in their order. A pin at slot ``s`` lands at
    ``s`` when enough rows precede it; otherwise the list is compacted (the pin follows every
    chosen row), so a pinned item is shown even in a short list. Done by sort keys: the j-th chosen
    row gets key j, a pin at slot s preceded by e pins of its query gets s - e - 0.5, exactly
    leaving s - e chosen rows ahead of it.
    """
    if len(seeds) == 0:  # chosen rows are grouped by query already: only the cut is left
        q = query[chosen]
        return chosen[np.arange(len(q)) - np.searchsorted(q, q) < k]
    seed_order = np.lexsort((slots, query[seeds]))
    seeds, slots = seeds[seed_order], slots[seed_order]
    earlier = group_rank(query[seeds])
    rows = np.concatenate([chosen, seeds])
    keys = np.concatenate([group_rank(query[chosen]), slots - earlier - 0.5])
    q = query[rows]
    order = np.lexsort((keys, q))
    rows, q = rows[order], q[order]
    return rows[group_rank(q) < k]
