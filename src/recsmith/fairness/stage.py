"""The fairness controls as one re-ranking selector: relevance adjusted, then picked under
calibration and exposure constraints.

``Fairness`` is what a pipeline configures (``[rerank]`` keys, resolved against the catalogue
view once at load); ``Fairness.selector`` makes the ``placement.Selector`` for one batch, which
``RulePlan.apply`` runs after the rules removed what may not be shown, so every control here
only chooses among allowed rows. In order:

1. **Adjust relevance**: the popularity penalty and the amortised boost are per-item log factors
   added to the rank-based relevance (like boost and bury rules), and the rows re-sorted.
2. **Pick**: with ``calibration`` > 0, Steck's greedy (``calibration.py``) under the cap and the
   exposure quotas; otherwise the inner selector (relevance order or MMR) orders the rows, and,
   with exposure constraints, the quotas are enforced over that order (``slots.fill``).

A pipeline without any of these keys builds no ``Fairness`` at all: its lists and its cost are
exactly those of before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recsmith.fairness.amortised import AmortisedConfig, AmortisedExposure
from recsmith.fairness.calibration import CalibrationScorer, normalised_rows, user_mix
from recsmith.fairness.exposure import ExposureRule, quotas, unmet
from recsmith.fairness.popularity import popularity_log_factor
from recsmith.fairness.slots import Padded, StaticOrder, fill
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.placement import Selector, select_by_relevance
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.merge import append_below
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import StaticSource

#: Items of a floor's group proposed beyond twice the floor: spares for those a query has seen.
POOL_EXTRA = 5


def item_groups(table: ItemTable, prop: str) -> sparse.csr_array:
    """[n_items, n_groups] ``p(g|i)``: the item's categories sharing weight 1 for ``category``,
    else one group per value of catalogue property ``prop`` (absent: no group)."""
    if prop == "category":
        return normalised_rows(table.category_sets)
    codes, lookup = table.codes(prop)
    has = np.flatnonzero(codes >= 0)
    return sparse.csr_array(
        (np.ones(len(has)), (has, codes[has])), shape=(table.n_items, max(len(lookup), 1))
    )


@dataclass(frozen=True, slots=True)
class Fairness:
    """Resolved controls (module docstring). ``adjust`` is the fixed per-item log factor
    (popularity penalty), ``amortised`` the live one, refreshed from the decision log."""

    calibration: float = 0.0
    groups: sparse.csr_array | None = None  # p(g|i), for calibration
    exposure: tuple[ExposureRule, ...] = ()
    adjust: np.ndarray | None = None
    amortised: AmortisedExposure | None = None
    pools: tuple[tuple[ExposureRule, StaticSource], ...] = ()  # floors' own candidates

    def prepare(
        self, cands: Candidates, queries: Queries, k: int, *, calibrate: bool
    ) -> tuple[Candidates, sparse.csr_array | None]:
        """What the pipeline's request adds before re-ranking: each floor group's most popular
        items appended under the candidates (a floor can only promote items retrieval proposed,
        and retrieval knows nothing of floors), and the users' histories when calibrating."""
        for rule, pool in self.pools:
            depth = 2 * rule.floor_count(k) + POOL_EXTRA
            cands = append_below(cands, pool.retrieve(queries, depth), pool.name)
        return cands, user_history(queries) if calibrate and self.calibration > 0 else None

    def selector(
        self, inner: Selector | None, history: sparse.csr_array | None, table: ItemTable
    ) -> Selector:
        """The selector for one batch over ``table`` (the live catalogue view); ``history``
        [n_queries, n_items] (interaction weights) calibrates: without it, calibration is skipped
        and ``inner`` orders the rows (a request that asks for MMR diversity does so)."""
        mix = None
        if self.calibration > 0 and self.groups is not None and history is not None:
            mix = user_mix(history, self.groups)
        return FairSelector(self, table, inner or select_by_relevance, mix)

    def unmet(self, final: Candidates, table: ItemTable, k: int) -> list[list[str]]:
        """Per query of the served ``final``: the exposure floors its list falls short of."""
        return unmet(self.exposure, final, table, k)


@dataclass(frozen=True, slots=True)
class FairSelector:
    """A ``placement.Selector`` applying ``Fairness`` around an ``inner`` selector."""

    fairness: Fairness
    table: ItemTable
    inner: Selector
    mix: np.ndarray | None  # [n_queries, n_groups] history mix, with calibration

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
        """Rows picked, grouped by query, in pick order."""
        f = self.fairness
        if len(query) == 0 or k <= 0:
            return np.zeros(0, np.int64)
        order = None
        log_factor = _gathered(items, f.adjust, f.amortised.log_boost if f.amortised else None)
        if log_factor is not None:
            relevance = relevance + log_factor
            order = np.lexsort((-relevance, query))  # stable: equal relevance keeps row order
            query, items, relevance = query[order], items[order], relevance[order]
            is_seed, group = is_seed[order], group[order]
        grid = Padded(query, int(query[-1]) + 1)
        need = k - np.bincount(query[is_seed], minlength=grid.shape[0])
        limits = quotas(f.exposure, self.table, items, k) if f.exposure else None
        if self.mix is not None and f.groups is not None:
            scorer = CalibrationScorer.build(
                f.calibration,
                grid,
                items,
                _per_query_unit(grid, relevance),
                self.mix[: grid.shape[0]],
                f.groups,
            )
            seeds = np.flatnonzero(is_seed)
            scorer.absorb(grid.row[seeds], grid.col[seeds])
            picked = fill(
                grid, is_seed=is_seed, group=group, cap=cap, quotas=limits, need=need, scorer=scorer
            )
        else:
            picked = self.inner(
                query=query,
                items=items,
                relevance=relevance,
                is_seed=is_seed,
                group=group,
                cap=cap,
                k=k,
            )
            if limits is not None:
                rank = np.arange(len(query), dtype=np.float64) + len(query)  # the rest: row order
                rank[picked] = np.arange(len(picked))  # the inner selector's picks first
                picked = fill(
                    grid,
                    is_seed=is_seed,
                    group=group,
                    cap=cap,
                    quotas=limits,
                    need=need,
                    scorer=StaticOrder(grid.spread(rank, np.inf)),
                )
        return order[picked] if order is not None else picked


def _gathered(items: np.ndarray, *parts: np.ndarray | None) -> np.ndarray | None:
    """The sum of the given per-item arrays at the candidates' ``items`` (gathered first: a
    request pays for its rows, not for the catalogue); None when none is given."""
    present = [p[items] for p in parts if p is not None]
    return np.sum(present, axis=0) if present else None


def _per_query_unit(grid: Padded, relevance: np.ndarray) -> np.ndarray:
    """Relevance min-max scaled to 0..1 within each query (a constant query: all 1), so
    calibration's λ trades the same amounts whatever the score scale."""
    rel = relevance.astype(np.float64)
    lo, hi = grid.spread(rel, np.inf).min(axis=1), grid.spread(rel, -np.inf).max(axis=1)
    span = (hi - lo)[grid.row]
    return np.divide(relevance - lo[grid.row], span, out=np.ones(len(relevance)), where=span > 0)


def build_fairness(
    table: ItemTable,
    *,
    calibration: float = 0.0,
    calibration_property: str = "category",
    exposure: Sequence[ExposureRule] = (),
    popularity_penalty: float = 0.0,
    popularity: np.ndarray | None = None,
    amortised: AmortisedConfig | None = None,
) -> Fairness | None:
    """The controls a pipeline asked for (its ``[rerank]`` keys; ``popularity``: interaction
    counts per item), or None when it asked for none: the default path stays as it was."""
    if not (calibration or exposure or popularity_penalty or (amortised and amortised.strength)):
        return None
    adjust = None
    if popularity_penalty:
        if popularity is None:
            raise ValueError("popularity_penalty needs the items' interaction counts")
        adjust = popularity_log_factor(popularity, popularity_penalty)
    return Fairness(
        calibration,
        item_groups(table, calibration_property) if calibration else None,
        tuple(exposure),
        adjust,
        AmortisedExposure.of(table, amortised) if amortised and amortised.strength else None,
        floor_pools(exposure, table, popularity),
    )


def floor_pools(
    rules: Sequence[ExposureRule], table: ItemTable, popularity: np.ndarray | None
) -> tuple[tuple[ExposureRule, StaticSource], ...]:
    """One popularity list per floor, over the group's items only (``Fairness.prepare``); none
    without popularity (a re-ranking outside a pipeline brings its own candidates)."""
    if popularity is None:
        return ()
    everyone = np.arange(table.n_items)
    pop = np.nan_to_num(np.asarray(popularity, np.float64), neginf=-np.inf)
    return tuple(
        (
            rule,
            StaticSource(
                f"exposure:{rule.label}", np.where(rule.matches(table, everyone), pop, -np.inf)
            ),
        )
        for rule in rules
        if rule.at_least
    )


def user_history(queries: Queries) -> sparse.csr_array:
    """What calibration matches a request to: the items the pipeline knows the user has (the
    ``exclude`` rows: training items and the store's) and their latest ones (``recent``), each
    counted once."""
    both = sparse.csr_array(queries.exclude + queries.recent)
    both.data[:] = 1.0
    return both
