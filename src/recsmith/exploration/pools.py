"""What an exploring slot draws from: a pool of items, the same for a whole batch or per query.

A pool is ``(items, member)``: item indices ``items`` [P] and, per query, which of them belong
to its pool ``member`` [n, P]. New arrivals and the long tail are the same for every query (all
True); a retrieval source's pool is what that source proposed for each query.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsmith.exploration.config import ExploreConfig
from recsmith.retrieval.candidates import Candidates

DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Pool:
    items: np.ndarray  # int64 [P], ascending
    member: np.ndarray  # bool [n, P]


def new_arrivals(created_us: np.ndarray, now_us: int, days: float, cap: int) -> np.ndarray:
    """Items created within ``days`` before ``now_us`` (unknown creation times never are), the
    newest ``cap`` of them, as ascending indices."""
    fresh = np.flatnonzero((created_us >= now_us - days * DAY_US) & (created_us <= now_us))
    if len(fresh) > cap:
        newest = np.argsort(-created_us[fresh], kind="stable")[:cap]
        fresh = fresh[newest]
    return np.sort(fresh)


def long_tail(interactions: np.ndarray, max_events: int, cap: int) -> np.ndarray:
    """Items with at most ``max_events`` training interactions (items added after training
    have none), the rarest ``cap`` of them, as ascending indices."""
    rare = np.flatnonzero(interactions <= max_events)
    if len(rare) > cap:
        rare = rare[np.argsort(interactions[rare], kind="stable")[:cap]]
    return np.sort(rare)


def source_pool(cands: Candidates, source: str, cap: int) -> Pool:
    """Per query, the items ``source`` proposed (its best ``cap`` per query at most)."""
    if source not in cands.sources:
        return Pool(np.zeros(0, np.int64), np.zeros((cands.n_queries, 0), bool))
    ranks = cands.source_ranks[:, cands.sources.index(source)]
    rows = np.flatnonzero((ranks > 0) & (ranks <= cap))
    items, col = np.unique(cands.items[rows].astype(np.int64), return_inverse=True)
    member = np.zeros((cands.n_queries, len(items)), bool)
    member[cands.query[rows], col] = True
    return Pool(items, member)


def pool_for(
    config: ExploreConfig,
    n_queries: int,
    cands: Candidates,
    created_us: np.ndarray,
    interactions: np.ndarray,
    now_us: int,
) -> Pool:
    """The configured pool for a batch of ``n_queries``."""
    if config.pool == "source":
        assert config.source is not None  # the config's validator
        return source_pool(cands, config.source, config.max_pool)
    if config.pool == "new_arrivals":
        items = new_arrivals(created_us, now_us, config.new_days, config.max_pool)
    else:
        items = long_tail(interactions, config.max_events, config.max_pool)
    return Pool(items, np.ones((n_queries, len(items)), bool))
