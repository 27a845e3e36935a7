"""``Explorer``: the pipeline's exploration stage, after re-ranking and its rules.

It takes the re-ranked candidates (cut to ``k``, or to ``k + depth`` for softmax) and returns the
served rows in display order with the true propensity of each, for a whole batch at once. Rules
win: the slot policies draw only items the re-ranking plan allows (``eligible``), and softmax only
reorders rows the plan already let through; pinned rows keep their slots under every policy.

Randomness comes from each request's id (``streams``), so one recommendation id always gives
the same list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from recsmith.exploration import plackett_luce
from recsmith.exploration.arms import ArmCounts
from recsmith.exploration.config import ExploreConfig
from recsmith.exploration.eligible import eligible
from recsmith.exploration.pools import Pool, pool_for
from recsmith.exploration.slots import Shares, explorable, fill_slots, uniform_shares
from recsmith.exploration.streams import Stream, gumbels, seeds_of, uniforms
from recsmith.exploration.thompson import bank_seed, posterior_bank, rank_shares
from recsmith.ids import IdMap
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.placement import place
from recsmith.rerank.plan import RulePlan
from recsmith.rerank.rules import Rule, compile_rules
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries

#: The source name explored rows carry (their reason and the decision log's ``sources``).
EXPLORED = "explore"


@dataclass(frozen=True, slots=True)
class ExploreRequest:
    """Per batch: the requests' ids (one seed each), the bandit counts of this interval, and the
    time new arrivals are judged at (now when None)."""

    request_ids: Sequence[str]
    arms: ArmCounts = field(default_factory=ArmCounts)
    now_us: int | None = None


@dataclass(frozen=True, slots=True)
class Explored:
    """The served rows (display order, grouped by query) and each row's propensity."""

    rows: Candidates
    propensity: np.ndarray  # float64 [len(rows)]


class Explorer:
    """See module docstring. Built with the pipeline's re-ranker (``Pipeline._assemble``)."""

    def __init__(
        self,
        config: ExploreConfig,
        rules: Sequence[Rule],
        item_ids: IdMap,
        created_us: np.ndarray,
        interactions: np.ndarray,
    ) -> None:
        self.config = config
        self.item_ids = item_ids
        self.created_us = created_us
        self.interactions = interactions
        self._plan = compile_rules(rules, item_ids)
        self._bank: tuple[tuple[int, bytes], np.ndarray] | None = None

    def depth(self, k: int) -> int:
        """How many re-ranked rows per query the stage needs to serve ``k``."""
        return k + self.config.depth if self.config.policy == "softmax" else k

    def explore(
        self,
        final: Candidates,
        cands: Candidates,
        queries: Queries,
        k: int,
        rules: Sequence[Rule],
        table: ItemTable,
        request: ExploreRequest,
    ) -> Explored:
        """The served rows of every query (see module docstring). ``cands`` are the candidates
        before re-ranking (a source pool's items); ``rules`` the request's own rules."""
        if len(request.request_ids) != final.n_queries:
            raise ValueError(
                f"{len(request.request_ids)} request ids for {final.n_queries} queries"
            )
        extra = list(rules)
        plan = self._plan.combine(compile_rules(extra, self.item_ids)) if extra else self._plan
        seeds = seeds_of(request.request_ids)
        if self.config.policy == "softmax":
            return self._softmax(final, plan, k, seeds)
        now = request.now_us if request.now_us is not None else time.time_ns() // 1000
        pool = pool_for(
            self.config, final.n_queries, cands, self.created_us, self.interactions, now
        )
        return self._slots(final, plan, k, seeds, pool, queries, table, request.arms)

    # ---- epsilon and thompson slots -------------------------------------------------------

    def _slots(
        self,
        final: Candidates,
        plan: RulePlan,
        k: int,
        seeds: np.ndarray,
        pool: Pool,
        queries: Queries,
        table: ItemTable,
        arms: ArmCounts,
    ) -> Explored:
        c = self.config
        row_at = _dense_rows(final, k)  # [n, k] row of final at each position, -1: none
        listed = np.where(row_at >= 0, final.items[np.maximum(row_at, 0)], -1).astype(np.int64)
        pinned = _pinned(final, plan, k, row_at)
        slots = np.asarray(c.slot_index, np.int64)
        open_slots = explorable(listed, pinned, slots).sum(axis=1)
        ok = eligible(pool, plan, table, queries, listed, open_slots)
        coins = uniforms(seeds, Stream.COIN, len(slots))
        shares: Shares
        if c.policy == "thompson":
            bank = self._posterior(pool, arms)
            pick = (uniforms(seeds, Stream.BANK, 1)[:, 0] * len(bank)).astype(np.int64)
            ranking = bank[pick]

            def shares(q: np.ndarray, col: np.ndarray, depth: int) -> np.ndarray:
                return rank_shares(bank, ok[q], col, depth)

        else:
            ranking = uniforms(seeds, Stream.POOL, len(pool.items))
            shares = uniform_shares(ok)
        drawn = fill_slots(listed, pinned, slots, c.epsilon, coins, pool.items, ok, ranking, shares)
        q, j = np.nonzero(drawn.items >= 0)  # row-major: grouped by query, in display order
        rows = final.take(row_at[q, j])  # an explored slot keeps its slot's score
        explored = drawn.explored[q, j]
        ranks = np.column_stack([rows.source_ranks * ~explored[:, None], explored]).astype(np.int16)
        scores = np.column_stack(
            [np.where(explored[:, None], np.nan, rows.source_scores), np.full(len(q), np.nan)]
        ).astype(np.float32)
        served = replace(
            rows,
            items=drawn.items[q, j].astype(np.int32),
            sources=(*final.sources, EXPLORED),
            source_ranks=ranks,
            source_scores=scores,
        )
        return Explored(served, drawn.propensity[q, j])

    def _posterior(self, pool: Pool, arms: ArmCounts) -> np.ndarray:
        """The bank of posterior draws for this pool and these counts (cached until either
        changes)."""
        key = (arms.version, pool.items.tobytes())
        if self._bank is not None and self._bank[0] == key:
            return self._bank[1]
        c = self.config
        ids = self.item_ids.to_external(pool.items)
        trials, wins = arms.lookup(ids, c.reward)
        prior = (c.prior[0], c.prior[1])
        bank = posterior_bank(trials, wins, prior, c.bank, bank_seed(arms.version, ids))
        self._bank = (key, bank)
        return bank

    # ---- softmax (Plackett–Luce) ----------------------------------------------------------

    def _softmax(self, final: Candidates, plan: RulePlan, k: int, seeds: np.ndarray) -> Explored:
        """Sample each query's unpinned rows by Plackett–Luce on rank-based weights
        ``(1 + r) ** (-1 / temperature)`` (r: 0-based rank among the unpinned rows, so boosts,
        buries and diversity keep shaping the order whatever the model's score scale), then put
        the pins back in their slots (``placement.place``)."""
        c = self.config
        depth = self.depth(k)
        row_at = _dense_rows(final, depth)
        pinned = _pinned(final, plan, k, row_at)
        free = (row_at >= 0) & ~pinned
        rank = np.cumsum(free, axis=1) - 1
        logw = np.where(free, -np.log1p(np.maximum(rank, 0)) / c.temperature, -np.inf)
        n, m = logw.shape
        order = plackett_luce.sample_order(logw, gumbels(seeds, Stream.GUMBEL, m))
        want = k - pinned.sum(axis=1)  # unpinned rows each query serves
        noise = gumbels(seeds, Stream.PROPENSITY, c.samples * m).reshape(n, c.samples, m)
        p = plackett_luce.propensities(logw, order, k, noise)  # [n, min(k, m)]
        position = np.arange(p.shape[1])
        take = (position[None, :] < want[:, None]) & np.isfinite(p)
        q, j = np.nonzero(take)
        chosen = row_at[q, order[q, j]]
        propensity = np.full(len(final), 1.0)
        propensity[chosen] = p[q, j]
        pin_q, pin_j = np.nonzero(pinned)
        pin_rows = row_at[pin_q, pin_j]
        slots = plan.pin_slot(final.items[pin_rows], k)
        rows = place(final.query, pin_rows, slots, chosen, k)
        return Explored(final.take(rows), propensity[rows])


def _dense_rows(final: Candidates, width: int) -> np.ndarray:
    """int64 [n, width]: the row of ``final`` at each position of each query, -1 past its end."""
    bounds = final.bounds()
    position = np.arange(len(final)) - bounds[final.query]
    out = np.full((final.n_queries, width), -1, np.int64)
    keep = position < width
    out[final.query[keep], position[keep]] = np.flatnonzero(keep)
    return out


def _pinned(final: Candidates, plan: RulePlan, k: int, row_at: np.ndarray) -> np.ndarray:
    """bool like ``row_at``: positions whose row holds a pinned item (never moved or
    replaced)."""
    slot = plan.pin_slot(final.items, k)
    return (row_at >= 0) & (slot[np.maximum(row_at, 0)] >= 0)
