"""Filling list slots one at a time for a whole batch: the loop calibrated re-ranking and
exposure constraints share.

Both need a greedy over the ``k`` slots (Steck's calibration scores a candidate against the mix
picked so far; a floor can only be guarded by knowing how many slots are left), but neither needs
a loop over users or candidates: every step takes one pick per query at once on a padded grid
(one query per row, its candidates along the columns). A step costs O(cells) numpy work, so a
list of ``k`` costs ``k`` steps whatever the batch size.

What a step may pick (``eligible``), in order of precedence:

1. a row not taken yet, in a query that still has a slot;
2. not over the category cap (``cap_per_category``, a rule: rules win);
3. not in a group already at its ceiling (``at_most``);
4. when the slots left are no more than the items still owed to floors (``at_least``), a row of a
   group still owed items, if the query has one; else the floor cannot be met and the list fills
   with the best of the rest (the caller reports the shortfall, ``exposure.unmet``).

Among those, the row the *scorer* rates highest wins (ties: the earlier column, i.e. the more
relevant row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True, init=False)
class Padded:
    """Flat rows grouped by query <-> cells of a [n_queries, widest query] grid."""

    row: np.ndarray  # int64 [n]: grid row (query) of each flat row
    col: np.ndarray  # int64 [n]: grid column of each flat row
    starts: np.ndarray  # int64 [n_q]: first flat row of each query
    shape: tuple[int, int]

    def __init__(self, query: np.ndarray, n_queries: int) -> None:
        bounds = np.searchsorted(query, np.arange(n_queries + 1))
        starts = bounds[:-1].astype(np.int64)
        row = np.asarray(query, np.int64)
        width = int(np.diff(bounds).max()) if n_queries else 0
        object.__setattr__(self, "row", row)
        object.__setattr__(self, "col", np.arange(len(row)) - starts[row])
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "shape", (n_queries, width))

    def spread(self, values: np.ndarray, fill: object) -> np.ndarray:
        """``values`` (one per flat row) on the grid; ``fill`` in the padding."""
        values = np.asarray(values)
        out = np.full(self.shape + values.shape[1:], fill, dtype=values.dtype)
        out[self.row, self.col] = values
        return out


class Scorer(Protocol):
    """Rates every cell for the next pick (higher first) and learns of each pick."""

    def scores(self) -> np.ndarray:
        """float [n_q, width]: the value of picking each cell now."""
        ...

    def absorb(self, rows: np.ndarray, cols: np.ndarray) -> None:
        """Cells just picked (one per listed query row)."""
        ...


@dataclass(frozen=True, slots=True)
class Quotas:
    """Exposure constraints for one batch, as counts: ``member[r, g]`` says flat row r is in group
    g; a query may hold at least ``floor[g]`` and at most ``ceiling[g]`` items of group g."""

    member: np.ndarray  # bool [n_rows, n_groups]
    floor: np.ndarray  # int64 [n_groups]
    ceiling: np.ndarray  # int64 [n_groups]


@dataclass(frozen=True, slots=True)
class StaticOrder:
    """A scorer for a fixed preference: ``rank`` [n_q, width], lower first (exposure constraints
    over an order another selector produced)."""

    rank: np.ndarray

    def scores(self) -> np.ndarray:
        return -self.rank

    def absorb(self, rows: np.ndarray, cols: np.ndarray) -> None:
        del rows, cols  # a fixed order learns nothing from picks


def fill(
    grid: Padded,
    *,
    is_seed: np.ndarray,
    group: np.ndarray,
    cap: int | None,
    quotas: Quotas | None,
    need: np.ndarray,
    scorer: Scorer,
) -> np.ndarray:
    """Flat rows picked, grouped by query in pick order: at most ``need[q]`` for query q. Seeds
    (pins) are already in the list: the scorer absorbed them; they count for the cap and the
    quotas here, and are never returned."""
    n_q, width = grid.shape
    if n_q == 0 or width == 0:
        return np.zeros(0, np.int64)
    taken = ~grid.spread(np.ones(len(grid.row), bool), False) | grid.spread(is_seed, False)
    grp = grid.spread(np.asarray(group, np.int64), -1)
    n_codes = int(grp.max(initial=-1)) + 2  # code -1 (no category) lands in column 0, uncapped
    per_cat = np.zeros((n_q, n_codes), np.int64)
    np.add.at(per_cat, (grid.row[is_seed], np.asarray(group, np.int64)[is_seed] + 1), 1)
    member = grid.spread(quotas.member, False) if quotas is not None else None
    held = np.zeros((n_q, 0), np.int64)
    if quotas is not None:
        held = np.zeros((n_q, len(quotas.floor)), np.int64)
        np.add.at(held, grid.row[is_seed], quotas.member[is_seed].astype(np.int64))
    q_idx = np.arange(n_q)
    picks = []
    for step in range(int(need.max(initial=0))):
        eligible = ~taken & (need > step)[:, None]
        if cap is not None:
            eligible &= (grp < 0) | (np.take_along_axis(per_cat, grp + 1, axis=1) < cap)
        if quotas is not None and member is not None:
            full = held >= quotas.ceiling
            eligible &= ~(member & full[:, None, :]).any(axis=2)
            owed = np.maximum(quotas.floor - held, 0)
            helps = (member & (owed > 0)[:, None, :]).any(axis=2) & eligible
            tight = (owed.sum(axis=1) >= need - step) & helps.any(axis=1)
            eligible &= ~tight[:, None] | helps
        if not eligible.any():
            break
        pick = np.argmax(np.where(eligible, scorer.scores(), -np.inf), axis=1)
        live = np.flatnonzero(eligible[q_idx, pick])
        cols = pick[live]
        taken[live, cols] = True
        per_cat[live, grp[live, cols] + 1] += 1
        if member is not None:
            held[live] += member[live, cols]
        scorer.absorb(live, cols)
        picks.append(grid.starts[live] + cols)
    if not picks:
        return np.zeros(0, np.int64)
    rows = np.concatenate(picks)
    return rows[np.argsort(grid.row[rows], kind="stable")]
