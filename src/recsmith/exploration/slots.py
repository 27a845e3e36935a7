"""Exploring slots: with probability ε each chosen slot shows an item drawn from a pool instead
of the ranked item, and the exact probability of what it shows.

Per query, the slots that *can* explore are the chosen positions that the list reaches and no pin
holds. Each flips its own coin (probability ε). The exploring slots take, in order, the first,
second, … item of one ranking of the eligible pool: a uniformly random order (``epsilon``) or
one banked Thompson draw (``thompson``). A query whose eligible pool is smaller than its
explorable slots explores nowhere (its list is deterministic: propensity 1), so a slot's chance
to explore never depends on how the other coins fell.

Propensities, exact: the ranked item kept at an explorable slot, ``1 − ε`` (it is never in the
pool: listed items are not eligible). An item ``x`` drawn at slot ``s`` with ``c`` explorable
slots before it: ``ε · Σ_b Binom(b; c, ε) · share_b(x)``, where ``share_b(x)`` is the probability
that ``x`` is the ``b``-th item of the pool ranking: ``1 / |E|`` for a uniform order (so
``ε / |E|``), the share of banked draws for Thompson. Every other position: 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import comb

#: (queries [E], pool columns [E], depth) -> share [E, depth] of each explored pick being the
#: 0-, 1-, … (depth-1)-th of its query's pool ranking.
Shares = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True, slots=True)
class SlotDraw:
    """What the slots showed: ``items`` [n, k] (-1: empty), ``propensity`` [n, k] (NaN where
    empty), ``explored`` [n, k] True where a pool item replaced the ranked one."""

    items: np.ndarray
    propensity: np.ndarray
    explored: np.ndarray


def explorable(listed: np.ndarray, pinned: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """bool [n, S]: the chosen ``slots`` (0-based) the list reaches and no pin holds."""
    inside = slots[None, :] < listed.shape[1]
    at = np.minimum(slots, listed.shape[1] - 1)
    return inside & (listed[:, at] >= 0) & ~pinned[:, at]


def fill_slots(
    listed: np.ndarray,
    pinned: np.ndarray,
    slots: np.ndarray,
    epsilon: float,
    coins: np.ndarray,
    pool_items: np.ndarray,
    eligible: np.ndarray,
    ranking: np.ndarray,
    shares: Shares,
) -> SlotDraw:
    """See module docstring. ``coins`` [n, S] uniforms; ``ranking`` [n, P] keys ordering the
    pool per query (larger first; ineligible columns are ignored)."""
    n, k = listed.shape
    can = explorable(listed, pinned, slots)
    enough = eligible.sum(axis=1) >= can.sum(axis=1)
    can &= enough[:, None]
    go = can & (coins < epsilon)
    keys = np.where(eligible, ranking, -np.inf)
    order = np.argsort(-keys, axis=1, kind="stable")[:, : len(slots)]  # [n, S] pool columns
    nth = np.cumsum(go, axis=1) - 1  # the b-th exploring slot of its query takes order[:, b]
    items = listed.copy()
    propensity = np.where(listed >= 0, 1.0, np.nan)
    explored = np.zeros((n, k), bool)
    q, s = np.nonzero(go)
    col = order[q, np.maximum(nth[q, s], 0)]
    at = slots[s]
    items[q, at] = pool_items[col]
    explored[q, at] = True
    before = np.cumsum(can, axis=1) - can  # explorable slots ahead of each slot
    if len(q):
        depth = int(before.max()) + 1
        b = np.arange(depth)
        c = before[q, s][:, None]
        # Binom(b; c, ε) written out: scipy.stats' pmf costs more than the whole slot policy.
        # comb(c, b) is 0 for b > c; the exponent is floored at 0 so that term is 0 · finite
        # (with ε = 1, 0 ** (c − b) for b > c would be ∞, and 0 · ∞ a NaN to mask away)
        chance = comb(c, b) * epsilon**b * (1 - epsilon) ** np.maximum(c - b, 0)
        propensity[q, at] = epsilon * (chance * shares(q, col, depth)).sum(axis=1)
    kept_q, kept_s = np.nonzero(can & ~go)
    propensity[kept_q, slots[kept_s]] = 1.0 - epsilon
    return SlotDraw(items, propensity, explored)


def uniform_shares(eligible: np.ndarray) -> Shares:
    """A uniformly random order: every eligible item is equally likely at every rank."""
    size = eligible.sum(axis=1)

    def shares(q: np.ndarray, col: np.ndarray, depth: int) -> np.ndarray:
        del col
        return np.broadcast_to((1.0 / size[q])[:, None], (len(q), depth))

    return shares
