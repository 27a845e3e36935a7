"""Sequential rules: the items that FOLLOWED an item in users' time-ordered sequences.

Where what a user did last predicts what comes next (review or viewing sequences, each user's
latest item held out), an item's *successors* are the signal that symmetric co-occurrence and
item-kNN blur with its predecessors. This is the "SR" baseline of Ludewig & Jannach (2018,
"Evaluation of session-based recommendation algorithms"), strong there at a tiny cost: every
pair (i at time step p, j at step p + d) of one user's sequence with 1 <= d <= ``steps`` adds 1/d
to rule i -> j (the nearer the follower, the stronger the rule). A step is one timestamp: events
at the same time have no order, so two of them are neighbours both ways (1 to i -> j and to
j -> i) and the rules do not depend on the order rows come in. Each item's rules are normalised
to sum to one, so an item followed by many others does not outvote one with a clear successor,
and each is pruned to its ``neighbors`` strongest. A user is scored from their ``history`` latest
time steps, the items of the k-th latest (k = 0, 1, ...) weighted 1/(k + 1): the last one leads,
the ones before it break ties and cover items with few rules.

Known users are scored from those training-time steps with the items they met since (the
online state, the request's ``recent``: ``Queries.latest``, newest first) ahead of them, one step
each: with m such items, the j-th newest weighs 1/(j+1) and training-time step k becomes k + m,
kept while it is below ``history`` (``history_after``). Offline there are none, so evaluation
scores from ``user_items_`` alone. Visitors scored from their recent items (``use = "recent"``,
no user row) get those items at equal weight, as the other recent-item sources do.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.models.association import Association
from recsmith.models.base import ModelConfig, sparse_from_arrays, sparse_to_arrays
from recsmith.models.itemknn import keep_top_per_row


class TransitionsConfig(ModelConfig):
    steps: int = Field(10, ge=1, description="followers within this many steps count")
    history: int = Field(10, ge=1, description="latest items a user is scored from")
    neighbors: int = Field(100, ge=1, description="rules kept per item")


def timed_sequences(data: Interactions, cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group indptr, event group, event item) of every user's positive events in time order, the
    events at one timestamp forming one *group*: ties carry no order (a bulk import, ratings
    entered in one second; half the adjacent pairs of ml-100k), so the order rows happen to come
    in must not turn them into one-way rules. Groups are numbered through all users (``indptr``:
    each user's first group), events sorted by (user, time, item). An item met in the group just
    before is dropped (a repeat back to back counts once, as ``user_sequences`` does), as is the
    same item twice in one group. A timestamp holding more than ``cap`` items (a bulk import,
    data without real times: a whole history at one instant) is cut into runs of ``cap`` in item
    order, one step apart: all-pairs within one huge group grew as its size squared (10k events
    in one second: 7 GB), runs keep every event's partners under (2 · steps + 1) · cap."""
    positive = data.event_weights > 0
    if not positive.any():  # every event rated 0 or below: no sequence (``np.r_`` needs one)
        return np.zeros(data.n_users + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    users, items = data.event_users[positive], data.event_items[positive].astype(np.int64)
    ts = data.event_ts[positive]
    order = np.lexsort((items, ts, users))
    users, items, ts = users[order], items[order], ts[order]
    group = _groups(users, ts, cap)
    # an item whose previous meeting by this user was in the same or the group before is dropped
    by_item = np.lexsort((group, items, users))
    u, i, g = users[by_item], items[by_item], group[by_item]
    again = np.r_[False, (u[1:] == u[:-1]) & (i[1:] == i[:-1]) & (g[1:] - g[:-1] <= 1)]
    keep = np.ones(len(items), dtype=bool)
    keep[by_item[again]] = False
    users, items, ts = users[keep], items[keep], ts[keep]
    group = _groups(users, ts, cap)  # a group left empty is gone: its neighbours become adjacent
    first = np.r_[True, group[1:] != group[:-1]]
    per_user = np.bincount(users[first], minlength=data.n_users)
    return np.r_[0, np.cumsum(per_user)], group, items


def _groups(users: np.ndarray, ts: np.ndarray, cap: int) -> np.ndarray:
    """Group number of each event sorted by (user, time, item): a new group where either of the
    first two changes, and after every ``cap`` events of one (user, time)."""
    at = np.arange(len(users))
    run = np.r_[True, (users[1:] != users[:-1]) | (ts[1:] != ts[:-1])]
    start = np.maximum.accumulate(np.where(run, at, 0))
    return np.cumsum((at - start) % cap == 0) - 1


def follow_counts(
    indptr: np.ndarray, group: np.ndarray, items: np.ndarray, n_items: int, steps: int
) -> sparse.csr_array:
    """Σ over users of 1/d for each (item at time group a -> item at group a + d), 1 <= d <=
    ``steps``, plus 1 in both directions for two items at the same time (d = 0, counted as
    neighbours with no direction); ``timed_sequences``' output. As Mᵀ·S·M: M groups × items,
    S[a, a + d] the weight of distance d within one user. The running product holds every
    distinct pair within ``steps`` before the rules are pruned, up to ``steps`` × events pairs
    (BENCHMARKS §64, Cost: ~0.9 GB at 1M events over 100k items)."""
    n_groups = indptr[-1]
    m = sparse.csr_array(
        (np.ones(len(items)), (group, items)), shape=(n_groups, n_items), dtype=np.float64
    )
    end = np.repeat(indptr[1:], np.diff(indptr))  # the group after each group's user's last
    a = np.arange(n_groups)
    rows, cols, weights = [], [], []
    for d in range(steps + 1):
        src = a[a + d < end]
        rows.append(src)
        cols.append(src + d)
        weights.append(np.full(len(src), 1.0 / max(d, 1)))
    s = sparse.csr_array(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_groups, n_groups),
    )
    total = sparse.csr_array(m.T @ (s @ m))
    total.setdiag(0)  # an item that comes back later is not its own successor
    total.eliminate_zeros()
    return total.tocsr()


def _latest_groups(
    indptr: np.ndarray, group: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, place from the end: 0 = latest, kept) of each event of ``timed_sequences``: kept
    where its group is among its user's ``n`` latest."""
    sizes = np.diff(indptr)
    users = np.repeat(np.arange(len(sizes)), sizes)[group]
    from_end = indptr[1:][users] - 1 - group  # 0 = latest group
    return users, from_end, from_end < n


def latest_weighted(
    indptr: np.ndarray, group: np.ndarray, items: np.ndarray, n_items: int, n: int
) -> sparse.csr_array:
    """Users × items: the items of each user's ``n`` latest time groups, the k-th latest group
    weighted 1/(k+1) (items at one time equally; an item met twice adds both weights)."""
    users, from_end, keep = _latest_groups(indptr, group, n)
    return sparse.csr_array(
        (1.0 / (from_end[keep] + 1), (users[keep], items[keep])),
        shape=(len(indptr) - 1, n_items),
        dtype=np.float32,
    )


def latest_steps(
    indptr: np.ndarray, group: np.ndarray, items: np.ndarray, n_items: int, n: int
) -> sparse.csr_array:
    """Users × (``n`` · items), 1 at column k · n_items + i where item i is in the user's k-th
    latest time group: ``latest_weighted`` before its weights are summed, so the steps can move
    back when newer items come first (``Transitions.history_after``); an item met twice keeps
    both steps, which summed weights could not give back."""
    users, from_end, keep = _latest_groups(indptr, group, n)
    return sparse.csr_array(
        (
            np.ones(int(keep.sum()), np.float32),
            (users[keep], from_end[keep] * n_items + items[keep]),
        ),
        shape=(len(indptr) - 1, n * n_items),
    )


def _places(latest: sparse.csr_array) -> sparse.coo_array:
    """``latest``'s entries with each stored place (smaller = newer) replaced by its rank in its
    row, 0 = newest: gaps (an item the model does not know) close up."""
    coo = latest.tocoo()
    order = np.lexsort((coo.data, coo.row))
    rows, cols = coo.row[order], coo.col[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    return sparse.coo_array((rank, (rows, cols)), shape=latest.shape)


class Transitions(Association):
    """Score(u, j) = Σ_k 1/(k+1) · rule(item_k(u) -> j) over the user's latest items item_k.

    A directed association: the same scoring, persistence and similar-items answer as
    ``Cooccurrence`` ("what follows this item" for ``/similar``), other counting and history.
    """

    name = "transitions"
    Config = TransitionsConfig
    config: TransitionsConfig
    #: ``latest_steps``; None in a release written before it (``follows_latest`` is then False)
    user_steps_: sparse.csr_array | None

    def fit(self, data: Interactions) -> Self:
        indptr, group, items = timed_sequences(data, cap=self.config.steps + 1)
        rules = follow_counts(indptr, group, items, data.n_items, self.config.steps)
        totals = np.asarray(rules.sum(axis=1)).ravel()
        rows = np.repeat(np.arange(rules.shape[0]), np.diff(rules.indptr))
        rules.data = rules.data / totals[rows]
        self.association_ = keep_top_per_row(rules, self.config.neighbors)
        history = self.config.history
        self.user_items_ = latest_weighted(indptr, group, items, data.n_items, history)
        self.user_steps_ = latest_steps(indptr, group, items, data.n_items, history)
        return self

    @property
    def follows_latest(self) -> bool:
        """True when known users can be scored with the items they met since training."""
        return self.user_steps_ is not None

    def history_after(self, users: np.ndarray, latest: sparse.csr_array) -> sparse.csr_array:
        """Rows (one per user of ``users``) of item weights to score: the row of ``latest``
        (items met since training, stored value = place, smaller = newer) one step each ahead of
        the user's training-time steps, the k-th newest step weighing 1/(k+1) while k <
        ``history`` (module docstring). An item both recent and in training adds both."""
        if self.user_steps_ is None:
            raise NotImplementedError("this release holds no steps: retrain to follow new items")
        n_items, history = self.n_items, self.config.history
        fresh = _places(latest)
        ahead = np.bincount(fresh.row, minlength=len(users))  # steps the recent items take
        steps = self.user_steps_[np.asarray(users, dtype=np.int64)].tocoo()
        moved = steps.col // n_items + ahead[steps.row]
        old, new = moved < history, fresh.data < history
        return sparse.csr_array(
            (
                1.0 / (np.concatenate([moved[old], fresh.data[new]]) + 1),
                (
                    np.concatenate([steps.row[old], fresh.row[new]]),
                    np.concatenate([steps.col[old] % n_items, fresh.col[new]]),
                ),
            ),
            shape=(len(users), n_items),
            dtype=np.float32,
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        steps = self.user_steps_
        kept = {} if steps is None else sparse_to_arrays("user_steps_", steps)
        return {**super()._arrays(), **kept}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        super()._restore(arrays)
        known = "user_steps_shape" in arrays
        self.user_steps_ = sparse_from_arrays("user_steps_", arrays) if known else None
