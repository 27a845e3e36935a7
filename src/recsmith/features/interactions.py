"""Interactions: stored events → a weighted, time-decayed user×item matrix with its id maps.

This is the one place where external ids become dense indices (through ``IdMap``); models downstream
see only integers. The per-event arrays are kept too, because trending scores and time-aware
features need individual timestamps, not just the aggregated matrix.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.config import Weight
from recsmith.features.items import ItemCatalog
from recsmith.ids import IdMap

log = logging.getLogger(__name__)

MICROS_PER_DAY = 86_400 * 1_000_000
#: The largest weight one event may carry into a model. Validation keeps values in their range at
#: the door, but a store may hold older data or another writer's (1e308 on a rating once made iALS
#: fail with NaN factors): weights beyond this are clipped to it. It is the widest default value
#: range, so no event validated under the defaults is touched, and models stay far from float32's
#: ~3.4e38: a pair's summed weight stays below 1e9 times its event count, a squared weight (iALS
#: confidences meet factors twice) below 1e18.
MAX_EVENT_WEIGHT = 1e9
#: Prefix of the actor key of an anonymous visitor (no user_id, only a session_id).
SESSION_PREFIX = "session:"


def actor_keys(events: pd.DataFrame) -> np.ndarray:
    """Who did each event: the user_id, or ``session:<session_id>`` for an anonymous visitor."""
    users = events["user_id"].to_numpy(dtype=object)
    anonymous = pd.isna(users)
    if not anonymous.any():
        return users
    keys = users.copy()
    sessions = events["session_id"].to_numpy(dtype=object)[anonymous]
    keys[anonymous] = [f"{SESSION_PREFIX}{s}" for s in sessions]
    return keys


def in_canonical_order(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` sorted by (time, actor, item, event type, value): the same events in any row
    order give the same frame, but for events equal in all five keys, which keep their given
    order between themselves (their session or context can differ). Events sharing a timestamp
    are common (a rating site saves a batch at once) and every tie rule downstream falls back
    on row order — which of a user's latest items validation holds out, a user's recent items,
    the first-appearance numbering of users and items — so a store's order (by a content hash)
    and a file's order shipped different calibration choices on the same events (ml-100k long
    sequences: test 0.064 vs 0.084).

    Strings are sorted as their ranks among their distinct values, and a frame already in the
    order is returned as is after one linear pass (half the sort's cost at 1M events,
    BENCHMARKS §66): a caller that sorted first does not pay twice."""
    keys = [
        events["ts"].to_numpy(dtype=np.int64),
        _ranks(actor_keys(events)),
        _ranks(events["item_id"].to_numpy(dtype=object)),
    ]
    if "event_type" in events:
        keys.append(_ranks(events["event_type"].to_numpy(dtype=object)))
    if "value" in events:
        keys.append(pd.to_numeric(events["value"], errors="coerce").to_numpy(np.float64))
    if _in_order(keys):
        return events
    order = np.lexsort(keys[::-1])  # stable; the last key is the primary one
    return events.iloc[order].reset_index(drop=True)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Each value's rank among the distinct values, in their sort order."""
    codes, _ = pd.factorize(values, sort=True)
    return codes


def _in_order(keys: list[np.ndarray]) -> bool:
    """Whether the rows are already sorted by ``keys`` (the first the primary one): each row
    compared with the next, from the last key to the first."""
    ordered = np.ones(max(len(keys[0]) - 1, 0), dtype=bool)
    for key in reversed(keys):
        ordered = (key[:-1] < key[1:]) | ((key[:-1] == key[1:]) & ordered)
    return bool(ordered.all())


def event_weights(events: pd.DataFrame, weights: Mapping[str, Weight]) -> np.ndarray:
    """Each event's weight by its type: a constant, its value, or log(1 + value); NaN or inf where
    a stored value makes it so (``usable_weights`` deals with those)."""
    types = events["event_type"]
    value = events["value"].to_numpy(dtype=np.float64)
    constant = types.map({t: float(w) for t, w in weights.items() if not isinstance(w, str)})
    out = np.array(constant.to_numpy(dtype=np.float64, na_value=np.nan))
    uses_value = types.map(lambda t: weights.get(t) == "value").to_numpy(dtype=bool)
    uses_log = types.map(lambda t: weights.get(t) == "log_value").to_numpy(dtype=bool)
    known = types.isin(list(weights)).to_numpy(dtype=bool)
    if not known.all():
        unknown = sorted(set(types[~known].astype(str)))
        raise ValueError(f"event_type: no weight configured for {unknown} (events.weights)")
    out[uses_value] = value[uses_value]
    with np.errstate(invalid="ignore", divide="ignore"):  # a stored negative count: NaN, dropped
        out[uses_log] = np.log1p(value[uses_log])
    return out


def usable_weights(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which events can be learnt from (a finite weight) and every weight clipped to
    +-``MAX_EVENT_WEIGHT``; one warning says how many events were dropped or clipped, so hostile
    stored values never reach a model as NaN or inf, and never pass without a word."""
    finite = np.isfinite(weights)
    clipped = np.clip(weights, -MAX_EVENT_WEIGHT, MAX_EVENT_WEIGHT)
    warn_unusable(int((~finite).sum()), int((finite & (clipped != weights)).sum()))
    return finite, clipped


def warn_unusable(dropped: int, over: int) -> None:
    """The one warning about events dropped (weight not finite) or clipped, whichever engine
    counted them (this module, or ``recsmith.spark``)."""
    if dropped or over:
        log.warning(
            "training data: dropped %d event(s) whose weight is not a finite number and clipped "
            "%d to +-%g (values the store holds outside events.value_range)",
            dropped,
            over,
            MAX_EVENT_WEIGHT,
        )


def binarize(matrix: sparse.csr_array) -> sparse.csr_array:
    """A float32 copy with every stored entry set to 1: "interacted or not"."""
    out = sparse.csr_array(matrix, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    return out


def decay_factors(ts: np.ndarray, reference_ts: int, half_life_days: float | None) -> np.ndarray:
    """Exponential time decay: an event one half-life older than the reference counts half."""
    if half_life_days is None:
        return np.ones(len(ts), dtype=np.float64)
    age_days = (reference_ts - ts.astype(np.float64)) / MICROS_PER_DAY
    return np.power(0.5, np.maximum(age_days, 0.0) / half_life_days)


def pair_decay(data: Interactions, share: float) -> sparse.csr_array:
    """Per stored (user, item) pair of ``data.matrix``: 0.5 ** (age / half-life) of the pair's
    latest event, the half-life ``share`` of the data's own time span (its first event to its
    reference time) and the age counted back from ``data.reference_ts`` — the data's "now", so
    on a validation past (``subset``) the past's newest event, never a later one (no leak); a
    share, not days, so one value fits data of any time scale. All 1 where the span is 0."""
    span_days = (data.reference_ts - int(data.event_ts.min(initial=data.reference_ts))) / (
        MICROS_PER_DAY
    )
    order = np.lexsort((data.event_ts, data.event_items, data.event_users))
    u, i, ts = data.event_users[order], data.event_items[order], data.event_ts[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    factors = decay_factors(ts[last], data.reference_ts, share * span_days or None)
    latest = sparse.csr_array((factors, (u[last], i[last])), shape=data.matrix.shape)
    return sparse.csr_array(binarize(data.matrix).multiply(latest), dtype=np.float32)


def pair_places(data: Interactions) -> sparse.csr_array:
    """Per stored (user, item) pair of ``data.matrix`` (the same structure, float32): its place
    among the user's stored pairs by their latest event, newest first — 1 for the newest, and
    pairs whose latest events share one instant share a place (one more than the pairs newer
    than them: such events have no order, and the rows' order must not make one). What EASE's
    ``recency`` weighs a user's own items by."""
    order = np.lexsort((data.event_ts, data.event_items, data.event_users))
    u, i, ts = data.event_users[order], data.event_items[order], data.event_ts[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = (u[1:] != u[:-1]) | (i[1:] != i[:-1])
    u, i, ts = u[last], i[last], ts[last]
    held = _pair_keys(data.matrix)  # sorted (user, item) keys of the stored pairs
    keys = u.astype(np.int64) * data.n_items + i
    at = np.searchsorted(keys, held)  # every stored pair has an event: found, in key order
    places = ranked_places(u[at].astype(np.int64), -ts[at])  # per user, newest first
    m = data.matrix
    return sparse.csr_array((places, m.indices.copy(), m.indptr.copy()), shape=m.shape)


def ranked_places(rows: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Per entry, its place among its row's entries by ``key`` ascending (1 first), float32;
    entries of a row with equal keys share a place, one more than the entries before them (no
    order made up where the key has none): ``pair_places``' rule, and EASE's for the places of
    a history scored at request time."""
    order = np.lexsort((key, rows))
    r, k = rows[order], key[order]
    starts = np.ones(len(r), dtype=bool)
    starts[1:] = (r[1:] != r[:-1]) | (k[1:] != k[:-1])
    run_first = np.maximum.accumulate(np.where(starts, np.arange(len(r)), 0))
    row_first = np.searchsorted(r, r)  # r is sorted: each row's first position
    places = np.empty(len(r), np.float32)
    places[order] = run_first - row_first + 1
    return places


def _matrix(
    u: np.ndarray,
    i: np.ndarray,
    w: np.ndarray,
    ts: np.ndarray,
    reference_ts: int,
    half_life_days: float | None,
    shape: tuple[int, int],
) -> sparse.csr_array:
    """Summed decayed weights per (user, item); net-negative pairs are "no positive signal".

    Float32 sums depend on their order: the events come in the canonical order
    (``in_canonical_order``, or a subset of events in it), so a pair's events are summed in the
    same order however they were read, and the same events give the same matrix bytes (and so
    the same iALS factors, ``models/als``)."""
    decayed = (w * decay_factors(ts, reference_ts, half_life_days)).astype(np.float32)
    matrix = sparse.csr_array((decayed, (u, i)), shape=shape, dtype=np.float32)
    matrix.sum_duplicates()
    matrix.data[matrix.data < 0] = 0
    matrix.eliminate_zeros()
    return matrix


@dataclass(frozen=True, slots=True, eq=False)
class Interactions:
    """A user×item matrix of summed (decayed) weights, its id maps, and the per-event arrays."""

    matrix: sparse.csr_array  # float32 [n_users, n_items]; only positive entries
    users: IdMap
    items: IdMap
    event_users: np.ndarray  # int32 per event
    event_items: np.ndarray  # int32 per event
    event_ts: np.ndarray  # int64 Unix microseconds per event
    event_weights: np.ndarray  # float32 per event, before decay
    reference_ts: int  # "now" for decay: the newest event unless given
    event_sessions: np.ndarray  # int32 per event: session code, -1 when the event had none
    catalog: ItemCatalog | None = None  # metadata; its items are in ``items`` even if untouched
    half_life_days: float | None = None  # the decay ``matrix`` was built with
    #: each event's stored context (compact JSON text or None), for the ranker's context features
    event_context: np.ndarray | None = None
    #: user profiles aligned to ``users`` (properties, None = no profile), for profile features
    profiles: tuple[Mapping[str, Any] | None, ...] | None = None
    #: ``had_pairs`` once built: validation, each label window and each tuning grid point ask
    #: for it (~90 ms at 1M events), and nothing changes an ``Interactions`` once it is made
    _had_pairs: sparse.csr_array | None = field(default=None, init=False, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @classmethod
    def from_events(
        cls,
        events: pd.DataFrame,
        weights: Mapping[str, Weight],
        *,
        half_life_days: float | None = None,
        reference_ts: int | None = None,
        catalog: ItemCatalog | None = None,
        profiles: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Interactions:
        """Build from an event frame (see ``events.schema.EVENT_COLUMNS``) in any row order.

        The events are put in the canonical order first (``in_canonical_order``): every path
        that trains, evaluates or tunes comes through here, and every tie rule downstream
        (a user's latest or recent items, the first-appearance numbering of users and items,
        float32 sums) then depends on the events, not on where they were read from — except
        between events equal in all five keys, whose session and context (which a ranker's
        query context and co-occurrence's baskets read) keep the order they came in.

        Catalogue items nobody interacted with are appended to ``items`` (empty columns), so
        content-based models can recommend them. ``profiles`` (user id → properties) are kept
        aligned to the users.
        """
        if events.empty:
            raise ValueError("events: no events to learn from")
        events = in_canonical_order(events)
        finite, weights_64 = usable_weights(event_weights(events, weights))
        if not finite.all():
            events, weights_64 = events[finite], weights_64[finite]
            if events.empty:
                raise ValueError("events: no event with a finite weight to learn from")
        users, u = IdMap.from_values(actor_keys(events))
        event_items = events["item_id"].to_numpy(dtype=object)
        if catalog is not None:
            extra = pd.Index(catalog.item_ids).difference(pd.Index(event_items), sort=False)
            event_items_and_catalog = np.concatenate([event_items, extra.to_numpy(dtype=object)])
            items, codes = IdMap.from_values(event_items_and_catalog)
            i = codes[: len(event_items)]
        else:
            items, i = IdMap.from_values(event_items)
        sessions = events["session_id"].to_numpy(dtype=object)
        session_codes, _ = pd.factorize(sessions, use_na_sentinel=True)
        ts = events["ts"].to_numpy(dtype=np.int64)
        ref = int(ts.max()) if reference_ts is None else int(reference_ts)
        w = weights_64.astype(np.float32)
        matrix = _matrix(u, i, w, ts, ref, half_life_days, (len(users), len(items)))
        context = events["context"].to_numpy(dtype=object) if "context" in events else None
        return cls(
            matrix,
            users,
            items,
            u,
            i,
            ts,
            w,
            ref,
            session_codes.astype(np.int32),
            catalog,
            half_life_days,
            context,
            _aligned(users, profiles),
        )

    def with_profiles(self, profiles: Mapping[str, Mapping[str, Any]] | None) -> Interactions:
        """The same interactions with ``profiles`` (user id → properties; empty or None: none)
        as their users', as ``from_events`` keeps them: a caller that built the matrix once
        hands it on without sorting the events again."""
        return replace(self, profiles=_aligned(self.users, profiles))

    def own_item_order(self, events: np.ndarray) -> np.ndarray | None:
        """The items in the order ``from_events`` would number them given only the events the
        boolean mask ``events`` selects (each item's index here, by its first selected event),
        then every item no selected event holds, in their order here; None where that is the
        order here already (a time prefix of the events: its first events are these data's).

        A validation past numbered so breaks ties among its items (equal popularity, zero
        scores: lower index first) as a model trained on that past alone would; under these
        data's numbering an item first seen in a held-out event comes earlier than the past
        would put it (review rv27a). The items with no selected event are those the past does
        not know (``source_tuning.known_items``) and the catalogue's, whose own order is kept."""
        seen = pd.unique(self.event_items[events])  # first-appearance order (hash-based, O(n))
        if np.array_equal(seen, np.arange(len(seen))):
            return None  # the first ``len(seen)`` items, in order: the rest follow as here
        unseen = np.ones(self.n_items, dtype=bool)
        unseen[seen] = False
        return np.concatenate([seen, np.flatnonzero(unseen)]).astype(np.int32)

    def subset(self, events: np.ndarray, items: np.ndarray | None = None) -> Interactions:
        """The same users, learning only from the events selected by the boolean mask
        ``events``: how a validation split is carved without re-mapping user ids. The same
        items (same indices), or where ``items`` is given (``own_item_order``) the same items
        renumbered: item n of the subset is item ``items[n]`` here."""
        u, i, ts = self.event_users[events], self.event_items[events], self.event_ts[events]
        ids = self.items
        if items is not None:
            i, ids = renumbering(items)[i], self.items.reordered(items)
        w = self.event_weights[events]
        ref = int(ts.max()) if len(ts) else self.reference_ts
        matrix = _matrix(u, i, w, ts, ref, self.half_life_days, self.matrix.shape)
        return Interactions(
            matrix,
            self.users,
            ids,
            u,
            i,
            ts,
            w,
            ref,
            self.event_sessions[events],
            self.catalog,
            self.half_life_days,
            None if self.event_context is None else self.event_context[events],
            self.profiles,
        )

    def fingerprint(self) -> str:
        """A short hash of the matrix and ids: which data a model was trained on."""
        return matrix_fingerprint(self.matrix, self.users, self.items)

    def had(self) -> sparse.csr_array:
        """Every (user, item) pair some event touched: ``matrix``'s weight where it holds the pair,
        an explicit 0 where the pair's weights net 0 or below (a rating of 0 or -1, which
        ``matrix`` drops as no positive signal). What serving must never list again: the user
        has had the item whatever they thought of it, and a scorer drops seen items (issue #15:
        a user's 0-star items came back). ``matrix`` itself where it holds every pair."""
        return with_touched(self.matrix, self.event_users, self.event_items)

    def had_pairs(self) -> sparse.csr_array:
        """``had`` with every pair 1: what serving excludes as its exclusions hold it
        (``ModelBundle.exclusions``, 0/1 rows), and what validation and the ranker's windows
        exclude. Not ``had`` itself: its explicit 0s (items rated 0 or below) are gone from any
        sum of it (``exclude + history`` in a source), and the item came back. Built once:
        every call returns the same array, which no caller may change (copy it first)."""
        had = self._had_pairs
        if had is None:
            had = binarize(self.had())
            object.__setattr__(self, "_had_pairs", had)  # frozen: set once, as a cache
        return had

    def new_to_users(self, later: sparse.csr_array) -> sparse.csr_array:
        """``later`` (users × items as ``matrix``; wider where it has items these data do not)
        without every pair these data's users had (``had``): the items still new to them, the
        only ones serving could list. What validation, the ranker's label windows and the
        evaluation's truth hold out, so an item a user rated 0 or below before is neither truth
        nor a candidate there, as it is never served (issue #15)."""
        had = self.had_pairs()
        if later.shape[1] > had.shape[1]:
            had = had.copy()  # the shared one stays as it is
            had.resize(later.shape)
        new = sparse.csr_array(later - later.multiply(had))
        new.eliminate_zeros()
        return new


def with_touched(
    matrix: sparse.csr_array, users: np.ndarray, items: np.ndarray
) -> sparse.csr_array:
    """``matrix`` (canonical, positive weights) with an explicit 0 at every (``users[k]``,
    ``items[k]``) pair it does not hold (``Interactions.had``); ``matrix`` itself where it holds
    every pair. One function for the in-process and the Spark release (``spark.train``), so both
    exclude the same items."""
    ones = np.ones(len(users), dtype=np.float32)
    touched = sparse.csr_array((ones, (users, items)), shape=matrix.shape)
    touched.sum_duplicates()
    if touched.nnz == matrix.nnz:
        return matrix
    # both canonical: row-major keys ascend, and ``matrix``'s pairs are among ``touched``'s
    keys = _pair_keys(touched)
    values = np.zeros(touched.nnz, dtype=matrix.dtype)
    values[np.searchsorted(keys, _pair_keys(matrix))] = matrix.data
    return sparse.csr_array((values, touched.indices, touched.indptr), shape=matrix.shape)


def _pair_keys(matrix: sparse.csr_array) -> np.ndarray:
    """Row × columns + column of each stored entry (int64): ascending in a canonical matrix."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices


def _aligned(
    users: IdMap, profiles: Mapping[str, Mapping[str, Any]] | None
) -> tuple[Mapping[str, Any] | None, ...] | None:
    """``profiles`` in the order of ``users`` (None for a user without one); None when empty."""
    if not profiles:
        return None
    return tuple(profiles.get(user) for user in users.external_ids.tolist())


def matrix_fingerprint(matrix: sparse.csr_array, users: IdMap, items: IdMap) -> str:
    """``Interactions.fingerprint`` of a matrix and its id maps, wherever they were built: the
    same data gives the same fingerprint from this process and from Spark."""
    h = hashlib.blake2b(digest_size=8)
    for arr in (matrix.indptr, matrix.indices, matrix.data):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update("\x1f".join(users.external_ids[:1000]).encode())
    h.update("\x1f".join(items.external_ids[:1000]).encode())
    return h.hexdigest()


def renumbering(order: np.ndarray) -> np.ndarray:
    """Each item's index under ``order`` (``Interactions.own_item_order``: item n there is item
    ``order[n]`` here), by its index here: what maps this data's item indices (events, held-out
    items) into a renumbered past's."""
    own = np.empty(len(order), np.int32)
    own[order] = np.arange(len(order), dtype=np.int32)
    return own
