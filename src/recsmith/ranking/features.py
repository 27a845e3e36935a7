"""Candidate features, defined once and computed by the same code offline and online.

``FeatureState`` is everything the features need, derived from the interactions of one past: for
training rows the label window's past — under time cuts the events before the window (no feature
sees the future — point in time correct); under ``label_protocol = "latest"`` every event but each
user's latest, so other users' later events too, never a row's own label, as a leave-last-out
evaluation trains (``training.latest_window``) — and for serving the deployed model's events.
``candidate_features`` then turns (queries, candidates) into a matrix with one vectorised pass; a
single request and a batch of ten thousand users go through exactly the same function, so there is
no training/serving skew to test away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from recsmith.features.interactions import MICROS_PER_DAY, Interactions, decay_factors
from recsmith.features.properties import PropertyColumns, property_columns
from recsmith.ranking import row_kernel
from recsmith.ranking.context import context_columns, context_names
from recsmith.ranking.property_features import (
    profile_values,
    property_names,
    property_values,
    segment_popularity,
    user_affinities,
)
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries
from recsmith.sparse_rows import DENSE_CELLS, row_values, rows_grid

TREND_HALF_LIFE_DAYS = 7.0
#: ``FeatureState``'s per-item columns, in ``feature_names``' order after ``n_sources``.
_ITEM_COLUMNS = ("item_popularity", "item_trend", "item_age_days", "item_price")


def _strings() -> np.ndarray:
    return np.zeros(0, str)


def _flags() -> np.ndarray:
    return np.zeros(0, bool)


def _no_columns() -> np.ndarray:
    return np.zeros((0, 0), np.float32)


def _no_shares() -> sparse.csr_array:
    return sparse.csr_array((0, 0), dtype=np.float32)


@dataclass(frozen=True, slots=True)
class FeatureState:
    """Per-item and per-user aggregates as of ``reference_ts`` (see module docstring)."""

    reference_ts: int
    item_popularity: np.ndarray  # float32 [n_items] distinct users
    item_trend: np.ndarray  # float32 [n_items] events decayed with a 7-day half-life
    item_age_days: np.ndarray  # float32 [n_items] since catalogue creation or first event
    item_price: np.ndarray  # float32 [n_items], NaN where unknown
    item_category: np.ndarray  # int32 [n_items], -1 = none
    user_events: np.ndarray  # float32 [n_users]
    user_category_share: sparse.csr_array  # [n_users, n_categories]
    user_category_last: sparse.csr_array  # [n_users, n_categories] last event ts (µs) + 1
    # declared context keys, item properties and profile properties (``property_features``);
    # empty in an artifact trained before they existed
    use_context: bool = True  # ``ranking.context_features``
    context_keys: np.ndarray = field(default_factory=_strings)  # str [k]
    item_property_names: np.ndarray = field(default_factory=_strings)  # str [p]
    item_property_categorical: np.ndarray = field(default_factory=_flags)  # bool [p]
    item_properties: np.ndarray = field(default_factory=_no_columns)  # float32 [n_items, p]
    user_property_share: sparse.csr_array = field(default_factory=_no_shares)  # [n_users, codes]
    profile_names: np.ndarray = field(default_factory=_strings)  # str [q]
    profile_categorical: np.ndarray = field(default_factory=_flags)  # bool [q]
    user_profiles: np.ndarray = field(default_factory=_no_columns)  # float32 [n_users, q]
    segment_item_share: sparse.csr_array = field(default_factory=_no_shares)  # [segments, n_items]

    @classmethod
    def build(
        cls,
        data: Interactions,
        item_category: np.ndarray,
        item_price: np.ndarray,
        item_created_ts: np.ndarray,
        *,
        item_properties: PropertyColumns | None = None,
        max_profile_properties: int = 0,
        use_context: bool = True,
        context_keys: Sequence[str] = (),
    ) -> FeatureState:
        """Aggregate ``data`` (whose events all precede its ``reference_ts``). Item attributes are
        aligned to ``data.items``: category code (-1 none), price (NaN), created_at µs (-1), and
        the property columns (``ItemAttributes.properties``); the ``max_profile_properties`` most
        declared properties of ``data.profiles`` become profile features."""
        n_items, n_users = data.n_items, data.n_users
        ref = data.reference_ts
        popularity = np.bincount(data.matrix.indices, minlength=n_items).astype(np.float32)
        decay = decay_factors(data.event_ts, ref, TREND_HALF_LIFE_DAYS)
        trend = np.bincount(data.event_items, weights=decay, minlength=n_items).astype(np.float32)
        first = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, data.event_items, data.event_ts)
        born = np.where(item_created_ts >= 0, item_created_ts, first)
        age = np.where(born < np.iinfo(np.int64).max, (ref - born) / MICROS_PER_DAY, np.nan)
        n_cats = int(item_category.max()) + 1 if len(item_category) else 0
        cats = item_category[data.event_items]
        has_cat = cats >= 0
        u, c, ts = data.event_users[has_cat], cats[has_cat], data.event_ts[has_cat]
        counts = sparse.csr_array(
            (np.ones(len(u), np.float32), (u, c)), shape=(n_users, max(n_cats, 1))
        )
        counts.sum_duplicates()
        user_events = np.bincount(data.event_users, minlength=n_users).astype(np.float32)
        share = sparse.diags_array(1.0 / np.maximum(user_events, 1.0)) @ counts
        last_frame = pd.DataFrame({"u": u, "c": c, "ts": ts}).groupby(["u", "c"])["ts"].max()
        last = sparse.csr_array(
            (
                last_frame.to_numpy(np.float64) + 1.0,
                (last_frame.index.get_level_values(0), last_frame.index.get_level_values(1)),
            ),
            shape=(n_users, max(n_cats, 1)),
        )
        props = item_properties or PropertyColumns.empty(n_items)
        profiles = property_columns(data.profiles or [None] * n_users, max_profile_properties)
        return cls(
            ref,
            popularity,
            trend,
            age.astype(np.float32),
            item_price.astype(np.float32),
            item_category.astype(np.int32),
            user_events,
            share.tocsr(),
            last,
            use_context,
            np.asarray(list(context_keys), dtype=str),
            props.names,
            props.categorical,
            props.values,
            user_affinities(data, props),
            profiles.names,
            profiles.categorical,
            profiles.values,
            segment_popularity(data, profiles),
        )

    @property
    def n_property_features(self) -> int:
        return len(self.item_property_names) + len(self.profile_names)


def feature_names(sources: tuple[str, ...], state: FeatureState) -> list[str]:
    """The columns of ``candidate_features``, in order."""
    per_source = [f"{kind}_{s}" for s in sources for kind in ("score", "rank")]
    return [
        *per_source,
        "n_sources",
        "item_popularity",
        "item_trend",
        "item_age_days",
        "item_price",
        "user_events",
        "user_category_share",
        "user_category_recency_days",
        "recent_category_share",
        *context_names(state.context_keys.tolist()),
        *property_names(
            state.item_property_names,
            state.item_property_categorical,
            state.profile_names,
            state.profile_categorical,
        ),
    ]


def candidate_features(
    state: FeatureState, queries: Queries, cands: Candidates, *, compiled: bool = True
) -> np.ndarray:
    """Features [len(cands), len(feature_names(cands.sources))], float32 (NaN = missing).
    Each feature is written as one contiguous row of a [features, candidates] matrix, returned
    as its transpose (a view, F order): the same columns written into the [candidates,
    features] matrix are strided, and numpy walks a block of a few adjacent columns (the
    sources' scores, the context) row by row, ~6 times as long as the block's contiguous rows;
    the compiled ranker reads the features of 16 rows as contiguous runs of this layout
    (``trees.forest``), so no transposing copy is made (one cost ~35 µs for a batch of 16). Past
    ``DENSE_CELLS`` (the row path of an offline batch) the [candidates, features] matrix is
    written in place, strided, holding one matrix instead of two: on 8,438 users (2.2M rows)
    its median thread CPU was 0.54-0.58 of ed5c404's and 0.75-0.89 of the transposed layout's,
    whose fastest calls were ~10 % faster though (BENCHMARKS §101). A request batch's columns
    are written by one compiled pass once it is built (``row_kernel``, §132: ~0.5 of numpy's
    CPU at batch 16 and 1), the same bits; ``compiled=False``, and the row path, keep numpy's."""
    n = len(cands)
    q, items = cands.query, cands.items
    keys = state.context_keys.tolist()
    if state.use_context:
        context = context_columns(queries.moments, queries.context, keys)
    else:  # unknown for every row: a column no split can use
        context = np.full((len(queries.users), len(context_names(keys))), np.nan, np.float32)
    n_src = 2 * len(cands.sources)
    at = n_src + len(_ITEM_COLUMNS) + 5  # n_sources, the item columns, the query's four
    width = at + context.shape[1] + state.n_property_features
    by_row = _past_dense_cells(state, queries)
    # by row: the [candidates, features] matrix itself, its columns written strided
    columns = np.empty((n, width), np.float32).T if by_row else np.empty((width, n), np.float32)
    library = None if by_row or not compiled else row_kernel.loaded()
    if library is not None and row_kernel.write_columns(
        library, columns, state, queries, cands, context
    ):
        if len(state.profile_names):
            profile_values(
                columns[width - len(state.profile_names) :].T,
                q,
                queries.users,
                items,
                state.user_profiles,
                state.profile_categorical,
                state.segment_item_share,
            )
        return columns.T
    columns[0:n_src:2] = cands.source_scores.T
    columns[1:n_src:2] = _rank_values(cands.source_ranks.T)
    columns[n_src] = _row_counts((cands.source_ranks.T > 0).T)  # a source's flags contiguous
    for j, name in enumerate(_ITEM_COLUMNS, start=n_src + 1):
        columns[j] = getattr(state, name).take(items)
    _query_category_columns(state, queries, q, state.item_category[items], columns[at - 4 : at].T)
    columns[at : at + context.shape[1]] = context.T.take(q, axis=1)
    if state.n_property_features:
        property_values(
            columns[at + context.shape[1] :].T,
            q,
            queries.users,
            items,
            state.item_properties,
            state.item_property_categorical,
            state.user_property_share,
            state.user_profiles,
            state.profile_categorical,
            state.segment_item_share,
        )
    return columns.T  # by row: C order; else F order


def _past_dense_cells(state: FeatureState, queries: Queries) -> bool:
    """Whether the batch has more (query, category) cells than ``DENSE_CELLS``: an offline batch
    of thousands of users, whose category columns are read row by row."""
    return len(queries.users) * int(state.user_category_share.shape[1]) > DENSE_CELLS


def _user_events(state: FeatureState, users: np.ndarray) -> np.ndarray:
    """float32 per query: its user's events, 0 for an unknown user; read once per query and
    gathered to the rows, not once per row."""
    return np.where(users >= 0, state.user_events[np.maximum(users, 0)], 0.0).astype(np.float32)


def _rank_values(ranks: np.ndarray) -> np.ndarray:
    """float32 in the shape of ``ranks`` (rows by sources, or the transpose): each source's rank
    of the row, NaN where it did not propose it (rank 0). Read from a table of the ranks' values
    (NaN at 0) in one gather: ~0.55 of what ``np.where(ranks > 0, ranks, nan)`` costs, whose
    float64 result is then cast again."""
    if ranks.min(initial=0) < 0:  # not a rank (an int16 overflown): no table reaches it
        return np.where(ranks > 0, ranks, np.nan).astype(np.float32)
    table = np.arange(int(ranks.max(initial=0)) + 1, dtype=np.float32)
    table[0] = np.nan
    return table.take(ranks)


def _row_counts(flags: np.ndarray) -> np.ndarray:
    """int64 [n]: the true cells of each row of ``flags`` [n, few], added column by column:
    ``flags.sum(axis=1)`` reduces along the short axis, ~7 times slower (296 against 44 µs on a
    batch of 64's 16,500 candidates × 4 sources)."""
    out = np.zeros(len(flags), np.int64)
    for column in flags.T:
        out += column
    return out


def _query_category_columns(
    state: FeatureState, queries: Queries, q: np.ndarray, cat: np.ndarray, out: np.ndarray
) -> None:
    """Writes ``out`` [n, 4], per candidate row: its query's user's events (0 unknown), that
    user's share of events in the row's category (0) and days since the last one (NaN: none, or
    no user or category), and the share of the query's recent (session) items in that category.

    The last three depend on the row's (query, category) alone. For a request batch (queries ×
    categories within ``DENSE_CELLS``) they are computed once per such cell, in dense planes of
    one value per cell plus one last cell for rows without a category, and read for every row
    by a gather: rows of one query share its user and its recent items (a batch of 16 users:
    ~4,100 rows, 16 × 500 cells of which a few hundred stored), where the row-by-row reads
    repeated that work for every row. Past ``DENSE_CELLS`` (an offline batch of thousands of
    users) row by row (``_category_columns_by_row``)."""
    users = queries.users
    n_queries = len(users)
    width = int(state.user_category_share.shape[1])
    out[:, 0] = _user_events(state, users).take(q)
    if _past_dense_cells(state, queries):
        out[:, 1:] = _category_columns_by_row(state, queries, q, cat)
        return
    n_cells = n_queries * width
    cell = np.where(cat >= 0, q.astype(np.int64) * width + cat, n_cells)
    share = np.zeros(n_cells + 1, np.float32)
    share[:n_cells] = rows_grid(state.user_category_share, users, DENSE_CELLS)
    out[:, 1] = share.take(cell)
    last = rows_grid(state.user_category_last, users, DENSE_CELLS)
    days = np.full(n_cells + 1, np.nan, np.float32)
    seen = np.flatnonzero(last > 0)
    days[seen] = (state.reference_ts - (last[seen] - 1.0)) / MICROS_PER_DAY
    out[:, 2] = days.take(cell)
    keyed, totals = _recent_keys(state, queries)
    counts = np.bincount(keyed, minlength=n_cells + 1)
    out[:, 3] = counts.take(cell) / totals.take(q)


def _category_columns_by_row(
    state: FeatureState, queries: Queries, q: np.ndarray, cat: np.ndarray
) -> np.ndarray:
    """``_query_category_columns``' last three for a batch too large for a dense cell per
    (query, category): the user's shares and last times read by scipy's element access, the
    session counts searched among the sorted (query, category) keys."""
    out = np.zeros((len(q), 3), np.float32)
    out[:, 1] = np.nan
    users = queries.users
    has = np.flatnonzero((users[q] >= 0) & (cat >= 0))
    if len(has):
        out[has, 0] = row_values(state.user_category_share, users, q[has], cat[has], DENSE_CELLS)
        last = row_values(state.user_category_last, users, q[has], cat[has], DENSE_CELLS)
        seen = last > 0
        out[has[seen], 1] = (state.reference_ts - (last[seen] - 1.0)) / MICROS_PER_DAY
    keyed, totals = _recent_keys(state, queries)
    has = np.flatnonzero(cat >= 0)
    if not len(has) or not len(keyed):
        return out
    n_cats = int(state.user_category_share.shape[1])
    wanted = q[has].astype(np.int64) * n_cats + cat[has]
    keys, counts = np.unique(keyed, return_counts=True)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    found = keys[at] == wanted
    out[has[found], 2] = counts[at[found]] / totals[q[has[found]]]
    return out


def _recent_keys(state: FeatureState, queries: Queries) -> tuple[np.ndarray, np.ndarray]:
    """The (query × categories + category) key of each of the queries' recent items that has a
    category, and each query's recent items (at least 1: the share's denominator), float32."""
    recent = queries.recent
    lengths = recent.indptr[1:] - recent.indptr[:-1]
    rows = np.arange(recent.shape[0]).repeat(lengths)
    rc = state.item_category[recent.indices]
    ok = rc >= 0
    n_cats = int(state.user_category_share.shape[1])
    return rows[ok].astype(np.int64) * n_cats + rc[ok], np.maximum(lengths, 1).astype(np.float32)
