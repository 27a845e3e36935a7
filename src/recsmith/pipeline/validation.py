"""The validation splits calibration chooses on, carved out of the training events.

Two protocols, because the data a pipeline will be judged on can be either (#15, BENCHMARKS
§29): a global time cut scores the users who return after it (what is hot at the cut is what
they take next, so trending wins there), each user's latest item scores every user at the end of
their own history (what wins there is personal). A choice made on one alone can serve the other
at half its best (trending alone: first after a time cut on ml-100k, below popularity on each
user's last item), so calibration scores every configuration on both wherever both hold.

A single time cut on a small data set holds ~100 returning users (ml-100k), too few for a paired
interval to tell a good order from a lucky one; where it holds fewer than ``POOL_USERS``, the
earlier cuts (twice, three times the share) are pooled into the same protocol: each scored on its
own past, their users together (§39). Each user's latest item on a small set holds a few hits
(500 short sessions: ~200 users, 2–4 hits per source): where it holds fewer than ``POOL_USERS``
users, each user's second and third latest items are pooled in the same way, each held out from
the events before it (``latest_item_folds``). Pooled splits hold many of the same users again
(a user returning after the latest cut has returned after the earlier ones; a fold's users are
mostly the previous fold's): calibration scores each user once, as their mean over the splits
that hold them (``calibration.ByUser``), and the folds count distinct users against
``POOL_USERS`` (``distinct_users``; the time cuts still count a user once per cut, §65).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from recsmith.features.interactions import Interactions
from recsmith.pipeline.source_tuning import holdout_at, latest_ranks
from recsmith.pipeline.training import has_time_order
from recsmith.ranking.context import first_events
from recsmith.sparse_rows import csr_from_pairs

LATEST_ITEM = "each user's latest item"
#: A time cut holding fewer returning users than this is pooled with the earlier cuts: at ~1,000
#: users a paired bootstrap interval on NDCG@10 is about ±0.01, at ~100 about ±0.04.
POOL_USERS = 1000
#: Two events of a user this close follow each other in one sitting: the common session gap of
#: web analytics (30 minutes of inactivity ends a visit), not a value read off any data set.
SITTING_GAP_US = 30 * 60 * 1_000_000
#: Each user's latest item measures the next step of a sitting where at least this share of its
#: held-out items follow the user's previous event within ``SITTING_GAP_US`` (``sitting_share``):
#: midway between the design samples' MovieLens (0.78-0.92) and simulated shop (0.53-0.59) shares,
#: BENCHMARKS §150.
SITTING_SHARE = 0.7


@dataclass(frozen=True, slots=True)
class Validation:
    """Events the sources learn from (``past``), the users scored and their held-out items
    (``truth`` rows align with ``users``), and the protocol that carved them."""

    past: Interactions
    users: np.ndarray
    truth: sparse.csr_array
    protocol: str
    #: each user's first held-out event (index into the full events; -1 none): the moment and
    #: context a validation query stands for, as in the ranker's label windows
    first: np.ndarray | None = None
    #: the full data's index of each of ``past``'s items where the past numbers them its own way
    #: (``Interactions.own_item_order``: as a model trained on it alone would, so ties break as
    #: there; ``truth`` too), None where the numbering is the full data's (a time cut's)
    items: np.ndarray | None = None


def validation_splits(
    full: Interactions,
    min_users: int,
    share: float,
    max_users: int,
    seed: int = 0,
    folds: int = 1,
) -> list[Validation]:
    """The time cuts (``pooled_time_cuts``) where they hold, then each user's latest item (and
    up to ``folds`` - 1 items before it, ``latest_item_folds``): the time cut alone misses what
    serves users at the end of their own history, the latest item alone misses what serves users
    who come back later. Pooled cuts (and pooled folds) share one ``protocol``."""
    cuts = pooled_time_cuts(full, min_users, share, max_users, seed)
    return [*cuts, *latest_item_folds(full, max_users, seed, folds)]


def pooled_time_cuts(
    full: Interactions, min_users: int, share: float, max_users: int, seed: int = 0
) -> list[Validation]:
    """Time cuts at the latest ``share`` of events, then twice and three times that (below half
    the events), taken while the users they hold together (a user once per cut: counting
    distinct users here dropped ml-100k ``sparse`` seed 0's cuts, §65) are fewer than
    ``POOL_USERS``; all named by one protocol, and none where together they hold fewer than
    ``min_users`` (or
    events carry no times). Each cut at most ``max_users`` users (seeded)."""
    if not has_time_order(full):
        return []
    cuts: list[Validation] = []
    for cut_share in (share * n for n in (1, 2, 3) if share * n < 0.5):
        val = _time_cut(full, cut_share)
        if len(val.users):
            cuts.append(val)
        if sum(len(v.users) for v in cuts) >= POOL_USERS:
            break
    if sum(len(v.users) for v in cuts) < min_users:
        return []
    if len(cuts) > 1:
        shares = ", ".join(v.protocol.rpartition(" ")[2] for v in cuts)
        cuts = [replace(v, protocol=f"temporal cuts at the latest {shares}") for v in cuts]
    return [_sampled(v, max_users, seed) for v in cuts]


def time_cut_split(
    full: Interactions, min_users: int, share: float, max_users: int, seed: int = 0
) -> Validation | None:
    """A global time cut where at least ``min_users`` users have events before it and items new
    to them after it: at the latest ``share`` of events, else twice or three times that share
    (below half the events) — the protocol closest to serving, which always answers the future,
    and the only one fair to time-relative features (a ranker's recency and trend). None where
    events carry no times or no cut holds enough users. At most ``max_users`` users (seeded)."""
    if not has_time_order(full):
        return None
    for cut_share in (share * n for n in (1, 2, 3) if share * n < 0.5):
        val = _time_cut(full, cut_share)
        if len(val.users) >= min_users:
            return _sampled(val, max_users, seed)
    return None


def latest_item_split(full: Interactions, max_users: int, seed: int = 0) -> Validation:
    """Each user's latest item held out where it is new to them (a random one where events
    carry no times); at most ``max_users`` users (seeded)."""
    return _latest_fold(full, latest_ranks(full, seed), 0, max_users, seed)


def latest_item_folds(
    full: Interactions, max_users: int, seed: int = 0, folds: int = 1
) -> list[Validation]:
    """Each user's latest item, then — while the distinct users held out together are fewer
    than ``POOL_USERS`` — each user's second latest, third latest … item (``folds`` at most),
    each held out from the events before it and scored on that past, all named by one protocol.
    A small set's latest items hold a few hits (diginetica, 500 sessions: ~200 users, 2–4 hits
    per source, BENCHMARKS §59), too few to tell popularity from a personal source. An earlier
    fold is not the same question asked again: its users have shorter pasts, and only users with
    that many items take part (diginetica ``short`` seed 0, 500 sessions: 200 users scored in
    fold 0, 162 in fold 1, 129 in fold 2, 250 distinct; §65), so it leans towards the longer
    histories; and it adds few new users, so what it adds is mostly more held-out items of the
    same users (``calibration.ByUser`` scores each user once)."""
    ranks = latest_ranks(full, seed)
    splits = [_latest_fold(full, ranks, 0, max_users, seed)]
    while len(splits) < folds and distinct_users(splits) < POOL_USERS:
        fold = _latest_fold(full, ranks, len(splits), max_users, seed)
        if not len(fold.users):
            break
        splits.append(fold)
    if len(splits) > 1:
        name = f"{LATEST_ITEM}, pooled with the {len(splits) - 1} before it"
        splits = [replace(v, protocol=name) for v in splits]
    return splits


def distinct_users(splits: Sequence[Validation]) -> int:
    """The users held out in any of ``splits``, each counted once (pooled splits repeat them)."""
    return len(np.unique(np.concatenate([v.users for v in splits]))) if splits else 0


def _latest_fold(
    full: Interactions, ranks: np.ndarray, place: int, max_users: int, seed: int
) -> Validation:
    """Each user's item at ``place`` from the end held out from the events before it
    (``source_tuning.holdout_at``: the past, and ``truth``, in the past's own numbering)."""
    out = holdout_at(full, ranks, place, seed, max_users)
    users = out.users
    truth = csr_from_pairs(len(users), full.n_items, np.arange(len(users)), out.held)
    first = first_events(full, ranks == place, users)
    return Validation(out.past, users, truth, LATEST_ITEM, first, out.items)


def _time_cut(full: Interactions, share: float) -> Validation:
    """Events before the latest ``share``; truth: each returning user's items new to them after."""
    cut = np.quantile(full.event_ts, 1.0 - share, method="higher")
    before = full.event_ts < cut
    order = full.own_item_order(before)  # None: events in time order number items as the past
    past = full.subset(before, order)
    new = past.new_to_users(full.subset(~before, order).matrix)
    known = np.diff(past.matrix.indptr) > 0
    users = np.flatnonzero(known & (np.diff(new.indptr) > 0)).astype(np.int32)
    truth = sparse.csr_array(new[users] > 0, dtype=np.float32)
    first = first_events(full, ~before, users)
    return Validation(past, users, truth, f"temporal cut at the latest {share:g}", first, order)


def _sampled(val: Validation, max_users: int, seed: int) -> Validation:
    if len(val.users) <= max_users:
        return val
    pick = np.sort(np.random.default_rng(seed).choice(len(val.users), max_users, replace=False))
    first = None if val.first is None else val.first[pick]
    return replace(val, users=val.users[pick], truth=val.truth[pick], first=first)


def sitting_share(full: Interactions, val: Validation) -> float | None:
    """Of ``val``'s users with an event strictly before their held-out one, the share whose
    held-out item follows their previous event (the latest strictly before it, any item) within
    ``SITTING_GAP_US`` (a user whose earlier events all share the held-out event's instant has
    no gap to measure and is not counted): how much of each user's latest
    item is the next step of the same sitting rather than a later visit. MovieLens users rate
    dozens of films in one sitting (ml-100k samples: 82-92 % of latest items within the gap;
    the shop simulator's 53-59 %); the order inside a sitting is what a leave-last-out split
    scores and what a later visit, a time cut and serving do not see (BENCHMARKS §143, §150).
    None where events carry no times, or no scored user has an earlier event."""
    if val.first is None or not has_time_order(full):
        return None
    held = val.first[val.first >= 0]
    order = np.lexsort((full.event_ts, full.event_users))
    owners, times = full.event_users[order].astype(np.int64), full.event_ts[order]
    # one sortable key per event: the user, then the time's rank among all times
    ranks = np.unique(times, return_inverse=True)[1].astype(np.int64)
    keys = owners * (int(ranks.max()) + 1) + ranks
    held_keys = keys[np.argsort(order)][held]
    before = np.searchsorted(keys, held_keys, side="left") - 1  # latest strictly earlier
    user = full.event_users[held].astype(np.int64)
    has_prev = (before >= 0) & (owners[np.maximum(before, 0)] == user)
    if not has_prev.any():
        return None
    gaps = full.event_ts[held][has_prev] - times[before[has_prev]]
    return float(np.mean(gaps <= SITTING_GAP_US))
