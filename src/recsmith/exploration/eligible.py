"""Which pool items a query may be shown: rules win over exploration.

A pool item is eligible for a query when the re-ranking plan allows it (available, not banned or
blocklisted, passing every filter — configured and the request's), the query does not exclude it
(the user's items, the request's ``exclude``), it is not already in the list nor pinned (a pin's
place is the rules' to choose, wherever the pin could not be honoured), and its category
has room under the cap for every slot that might explore. The check is the re-ranker's own
(``RulePlan.allowed``), so exploration cannot disagree with it.
"""

from __future__ import annotations

import numpy as np

from recsmith.exploration.pools import Pool
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.plan import RulePlan
from recsmith.retrieval.queries import Queries


def eligible(
    pool: Pool,
    plan: RulePlan,
    table: ItemTable,
    queries: Queries,
    listed: np.ndarray,
    open_slots: np.ndarray,
) -> np.ndarray:
    """bool [n, P]. ``listed`` [n, k] item indices of each list (-1: empty), ``open_slots`` [n]
    how many slots of each list may explore (the cap must hold whichever of them do)."""
    n, size = pool.member.shape
    if size == 0:
        return pool.member
    allowed = plan.allowed(pool.items, table) & ~np.isin(pool.items, plan.pin_items)
    ok = pool.member & allowed[None, :]
    ok &= queries.exclude[:, pool.items].toarray() == 0
    pos = np.searchsorted(pool.items, listed).clip(max=size - 1)
    inside = (pool.items[pos] == listed) & (listed >= 0)
    rows = np.broadcast_to(np.arange(n)[:, None], listed.shape)
    ok[rows[inside], pos[inside]] = False
    if plan.cap is not None:
        group = table.category[pool.items]  # [P]
        listed_group = np.where(listed >= 0, table.category[np.maximum(listed, 0)], -2)
        count = (listed_group[:, :, None] == group[None, None, :]).sum(axis=1)  # [n, P]
        ok &= (group[None, :] < 0) | (count + open_slots[:, None] <= plan.cap)
    return ok
