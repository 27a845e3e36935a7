"""Columns of ``candidate_features`` that a batch computes in bulk, against a Python walk over
the candidate rows: each source's score and rank (NaN where it did not propose the row), the
query's user's events (0 unknown), how many sources proposed each row, the item's own columns,
the user's share of the row's category and the days since their last event in it (scipy's
element access), the share of the query's recent items in the row's category, the user's
affinity for the item's categorical property and the item's numeric one (dense cells per
(query, category or code) for a request batch, row by row past ``DENSE_CELLS``), the user's
numeric profile value and the item's popularity in the user's segment, and the query's context
columns repeated on each of its rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pytest
from scipy import sparse

from recsmith.features.interactions import MICROS_PER_DAY
from recsmith.ranking import features, property_features, row_kernel
from recsmith.ranking.context import context_columns
from recsmith.ranking.features import FeatureState, candidate_features, feature_names
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries

N_USERS, N_ITEMS, N_CATS, N_CODES, N_SEGMENTS = 30, 80, 6, 5, 3
REFERENCE_TS = 1_700_000_000_000_000


def _state(rng: np.random.Generator) -> FeatureState:
    category = rng.integers(-1, N_CATS, N_ITEMS).astype(np.int32)  # -1: no category
    share = sparse.random_array((N_USERS, N_CATS), density=0.3, rng=rng, format="csr")
    # last event in a category (µs + 1), stored where the share is not: the two are read apart
    last = sparse.random_array((N_USERS, N_CATS), density=0.4, rng=rng, format="csr")
    last.data = REFERENCE_TS + 1.0 - np.floor(last.data * 90 * MICROS_PER_DAY)
    brand = np.where(rng.random(N_ITEMS) < 0.2, np.nan, rng.integers(0, N_CODES, N_ITEMS))
    size = np.where(rng.random(N_ITEMS) < 0.2, np.nan, rng.random(N_ITEMS) * 40)
    affinity = sparse.random_array((N_USERS, N_CODES), density=0.4, rng=rng, format="csr")
    # profiles: a numeric age and a categorical segment, each missing for some users
    age = np.where(rng.random(N_USERS) < 0.2, np.nan, rng.random(N_USERS) * 60)
    segment = np.where(rng.random(N_USERS) < 0.2, np.nan, rng.integers(0, N_SEGMENTS, N_USERS))
    popularity = sparse.random_array((N_SEGMENTS, N_ITEMS), density=0.5, rng=rng, format="csr")
    return FeatureState(
        reference_ts=REFERENCE_TS,
        item_popularity=rng.random(N_ITEMS).astype(np.float32),
        item_trend=rng.random(N_ITEMS).astype(np.float32),
        item_age_days=rng.random(N_ITEMS).astype(np.float32),
        item_price=rng.random(N_ITEMS).astype(np.float32),
        item_category=category,
        user_events=rng.random(N_USERS).astype(np.float32),
        user_category_share=share.astype(np.float32),
        user_category_last=last.astype(np.float64),
        item_property_names=np.asarray(["brand", "size"]),
        item_property_categorical=np.asarray([True, False]),
        item_properties=np.stack([brand, size], axis=1).astype(np.float32),
        user_property_share=affinity.astype(np.float32),
        profile_names=np.asarray(["age", "segment"]),
        profile_categorical=np.asarray([False, True]),
        user_profiles=np.stack([age, segment], axis=1).astype(np.float32),
        segment_item_share=popularity.astype(np.float32),
    )


def _batch(rng: np.random.Generator, n: int, category: np.ndarray) -> tuple[Queries, Candidates]:
    # a quarter unknown (-1): visitors, whose user columns read nothing
    users = np.where(rng.random(n) < 0.25, -1, rng.integers(0, N_USERS, n)).astype(np.int32)
    recent_sets = [
        rng.choice(N_ITEMS, size=int(rng.integers(0, 6)), replace=False) for _ in range(n)
    ]
    # query 0's session is one item, and one of its candidates shares that item's category
    # (below): a share of 1, which a denominator of anything but the session's length misreads
    recent_sets[0] = np.asarray([int(np.flatnonzero(category >= 0)[0])])
    rows = [q for q, s in enumerate(recent_sets) for _ in s]
    cols = np.concatenate([np.zeros(0, np.int64), *recent_sets])
    recent = sparse.csr_array((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, N_ITEMS))
    contexts = tuple(
        {"device": str(rng.choice(["mobile", "desktop"])), "hour": int(rng.integers(0, 24))}
        if rng.random() < 0.5
        else {}
        for _ in range(n)
    )
    moments = rng.integers(1_600_000_000_000_000, 1_700_000_000_000_000, n)
    queries = Queries(
        users, recent, sparse.csr_array((n, N_ITEMS), dtype=np.float32), contexts, moments
    )
    query = np.sort(np.r_[0, rng.integers(0, n, 8 * n)]).astype(np.int32)
    m = len(query)
    ranks = rng.integers(0, 4, (m, 3)).astype(np.int16)  # 0: that source did not propose it
    ranks[rng.random((m, 3)) < 0.05] = 300  # a deep rank (ranks reach a quota's 200 and more)
    items = rng.integers(0, N_ITEMS, m).astype(np.int32)
    items[0] = recent_sets[0][0]  # query 0's first candidate (queries sorted, 0 has one)
    cands = Candidates(
        n,
        ("a", "b", "c"),
        query,
        items,
        rng.random(m).astype(np.float32),
        np.where(ranks > 0, rng.random((m, 3)), np.nan).astype(np.float32),
        ranks,
    )
    return queries, cands


@pytest.mark.parametrize("path", ["numpy", "compiled", "rows"])
@pytest.mark.parametrize("seed", range(5))
def test_bulk_columns_are_the_walk_over_rows(
    seed: int, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dense = path != "rows"
    if not dense:  # an offline batch's path: element access, searched among the sorted keys
        monkeypatch.setattr(features, "DENSE_CELLS", 0)
        monkeypatch.setattr(property_features, "DENSE_CELLS", 0)
    if path == "compiled":
        _compiled_or_skip()
    rng = np.random.default_rng(seed)
    state = _state(rng)
    queries, cands = _batch(rng, int(rng.integers(1, 12)), state.item_category)
    got = candidate_features(state, queries, cands, compiled=path == "compiled")
    # a request batch's features are feature-major (the compiled ranker reads them in place),
    # an offline batch's row path row-major: each contiguous, neither copied on the way
    assert got.flags.f_contiguous if dense else got.flags.c_contiguous
    names = feature_names(cands.sources, state)
    column = {name: got[:, j] for j, name in enumerate(names)}

    ctx = context_columns(queries.moments, queries.context, [])
    recent = queries.recent
    for r in range(len(cands)):
        q, item = int(cands.query[r]), int(cands.items[r])
        assert column["n_sources"][r] == sum(int(x) > 0 for x in cands.source_ranks[r])
        for s, source in enumerate(cands.sources):  # NaN where the source did not propose it
            rank = int(cands.source_ranks[r, s])
            got_rank, got_score = column[f"rank_{source}"][r], column[f"score_{source}"][r]
            assert got_rank == rank if rank > 0 else np.isnan(got_rank)
            assert got_score == cands.source_scores[r, s] if rank > 0 else np.isnan(got_score)
        for name in ("item_popularity", "item_trend", "item_age_days", "item_price"):
            assert column[name][r] == getattr(state, name)[item]
        user = int(queries.users[q])
        assert column["user_events"][r] == (state.user_events[user] if user >= 0 else 0.0)
        cat = int(state.item_category[item])
        share = state.user_category_share[user, cat] if user >= 0 and cat >= 0 else 0.0
        assert column["user_category_share"][r] == np.float32(share)
        last = state.user_category_last[user, cat] if user >= 0 and cat >= 0 else 0.0
        days = (REFERENCE_TS - (last - 1.0)) / MICROS_PER_DAY if last > 0 else np.nan
        _same(column["user_category_recency_days"][r], np.float32(days))
        brand, size = state.item_properties[item]
        known = user >= 0 and not np.isnan(brand)
        affinity = state.user_property_share[user, int(brand)] if known else np.nan
        _same(column["user_affinity_brand"][r], np.float32(affinity))
        _same(column["item_size"][r], size)
        age, segment = state.user_profiles[user] if user >= 0 else (np.nan, np.nan)
        _same(column["user_age"][r], age)
        known = not np.isnan(segment)
        popularity = state.segment_item_share[int(segment), item] if known else np.nan
        _same(column["segment_popularity_segment"][r], np.float32(popularity))
        mine = recent.indices[recent.indptr[q] : recent.indptr[q + 1]].tolist()
        same = sum(int(state.item_category[i]) == cat for i in mine) if cat >= 0 else 0
        want = np.float32(same / np.float32(max(len(mine), 1)))
        assert column["recent_category_share"][r] == want
        for j, name in enumerate(("hour", "day_of_week", "device")):
            _same(column[name][r], ctx[q, j])


def _compiled_or_skip() -> None:
    """Wait for the compiled pass (``row_kernel``); skip where this machine cannot build it."""
    if not row_kernel.wait(120):
        pytest.skip(f"no compiled feature columns here: {row_kernel.unavailable_reason()}")


def _same(got: np.floating, want: np.floating) -> None:
    """Equal, or both NaN."""
    assert got == want or (np.isnan(got) and np.isnan(want)), (got, want)


def test_rank_values_read_nan_for_no_rank_and_survive_a_negative() -> None:
    ranks = np.asarray([[0, 3], [1, 0], [264, 2]], np.int16)
    got = features._rank_values(ranks)
    assert got.dtype == np.float32
    assert np.array_equal(got, [[np.nan, 3], [1, np.nan], [264, 2]], equal_nan=True)
    assert features._rank_values(np.zeros((0, 2), np.int16)).shape == (0, 2)
    # not a rank: NaN, as ranks <= 0 always read (-1 would read the table's last value, 4)
    odd = np.asarray([[-1, 4]], np.int16)
    assert np.array_equal(features._rank_values(odd), [[np.nan, 4]], equal_nan=True)


def _int64_indexed(matrix: sparse.csr_array, duplicated: bool = False) -> sparse.csr_array:
    """``matrix`` with int64 row offsets and columns (a release's mapped matrices hold them);
    ``duplicated``: each row's first entry stored twice more after the row's others, with
    values that add up differently in another order (a matrix not in canonical form, which
    numpy's grid adds up in storage order)."""
    indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
    if duplicated:
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(indptr))
        first = indptr[:-1][np.diff(indptr) > 0]
        extra_rows = np.repeat(rows[first], 2)
        keys = np.r_[rows, extra_rows]
        order = np.argsort(keys, kind="stable")
        indices = np.r_[indices, np.repeat(indices[first], 2)][order]
        thirds = np.tile(np.asarray([1e-8, 3.3], data.dtype), len(first))
        data = np.r_[data, thirds][order]
        indptr = np.r_[0, np.cumsum(np.bincount(keys, minlength=matrix.shape[0]))]
    out = sparse.csr_array((data, indices.astype(np.int64), indptr), shape=matrix.shape)
    out.indptr = np.asarray(indptr, np.int64)
    assert out.indices.dtype == out.indptr.dtype == np.int64
    return out


@pytest.mark.parametrize("seed", range(8))
def test_compiled_columns_are_numpys_bit_for_bit(seed: int) -> None:
    """The compiled pass against numpy's path on the same batch, every bit (NaN's included),
    the users' matrices int32- or int64-indexed, in canonical form or with entries stored more
    than once (added in storage order), a state with properties and one without."""
    _compiled_or_skip()
    rng = np.random.default_rng(100 + seed)
    state = _state(rng)
    if seed % 2:
        state = replace(
            state,
            user_category_share=_int64_indexed(state.user_category_share, seed % 4 == 1),
            user_category_last=_int64_indexed(state.user_category_last, seed % 4 == 1),
            user_property_share=_int64_indexed(state.user_property_share, seed % 4 == 1),
        )
    if seed == 6:  # an artifact trained before properties existed
        state = replace(
            state,
            item_property_names=np.zeros(0, str),
            item_property_categorical=np.zeros(0, bool),
            item_properties=np.zeros((0, 0), np.float32),
            user_property_share=sparse.csr_array((0, 0), dtype=np.float32),
            profile_names=np.zeros(0, str),
            profile_categorical=np.zeros(0, bool),
            user_profiles=np.zeros((0, 0), np.float32),
        )
    queries, cands = _batch(rng, int(rng.integers(1, 12)), state.item_category)
    got = candidate_features(state, queries, cands, compiled=True)
    want = candidate_features(state, queries, cands, compiled=False)
    # the compiled pass wrote them, not numpy's path after it declined
    library, context = row_kernel.loaded(), context_columns(queries.moments, queries.context, [])
    out = np.empty((got.shape[1], len(cands)), np.float32)
    assert library is not None
    assert row_kernel.write_columns(library, out, state, queries, cands, context)
    assert got.flags.f_contiguous and got.shape == want.shape
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("where", ["item", "recent", "user"])
@pytest.mark.parametrize("past", [0, 1000])
def test_an_index_past_the_state_is_numpys_error_not_a_read_past_an_array(
    where: str, past: int
) -> None:
    """A candidate item, a recent item or a user past the state's arrays, the first such index
    or far past: numpy's path raises IndexError, and so must the compiled one (it hands the
    batch to numpy) rather than read past the end of an array. The first index is the one an
    off-by-one bound reads one element past with: caught only by the sanitized build
    (``test_row_kernel_sanitized``), where the plain one reads a neighbour's bytes."""
    _compiled_or_skip()
    rng = np.random.default_rng(7)
    state = _state(rng)
    queries, cands = _batch(rng, 4, state.item_category)
    if where == "item":
        cands.items[-1] = N_ITEMS + past
    elif where == "recent":
        queries.recent.indices[-1] = N_ITEMS + past
    else:
        queries.users[-1] = N_USERS + past
    for compiled in (False, True):
        with pytest.raises(IndexError):
            candidate_features(state, queries, cands, compiled=compiled)


@pytest.mark.parametrize("code", [-1.0, 2.5, N_CODES, N_CODES + 1, 1e12, -np.inf])
def test_an_odd_categorical_code_of_the_last_query_is_numpys_outcome(code: float) -> None:
    """An item's categorical code that is no column of the affinity matrix, on the batch's last
    query (whose affinity row ends the dense grid, one NaN cell after it): the compiled pass
    answers as numpy's path does, bit for bit, or declines where numpy raises. Code
    ``N_CODES + 1`` lands one cell past the grid, which an off-by-one bound reads."""
    _compiled_or_skip()
    rng = np.random.default_rng(5)
    state = _state(rng)
    queries, cands = _batch(rng, 4, state.item_category)
    queries.users[-1] = 0  # a known user: the grid's last row is the user's, not NaN
    cands.query[-1] = len(queries) - 1
    values = state.item_properties.copy()
    values[cands.items[-1], 0] = code
    state = replace(state, item_properties=values)
    outcomes = []
    for compiled in (False, True):
        try:
            got = candidate_features(state, queries, cands, compiled=compiled)
            outcomes.append(got.view(np.uint32).tobytes())
        except IndexError as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]


def test_the_compiled_pass_reads_each_state_it_is_handed_not_the_last() -> None:
    """Three states (the second's item columns float64: copied for the pass) answered in turn,
    two alternating then the third pushing the first out: every answer is numpy's for its own
    state, bit for bit. The pass takes a state's arrays once and keeps them while the state is
    one of the last two it was handed (a shadow release alternates two: not taken again)."""
    _compiled_or_skip()
    rng = np.random.default_rng(11)
    first = _state(rng)
    second = replace(
        _state(rng),
        item_popularity=rng.random(N_ITEMS),
        item_price=np.where(rng.random(N_ITEMS) < 0.3, np.nan, rng.random(N_ITEMS)),
    )
    third = _state(rng)
    queries, cands = _batch(rng, 6, first.item_category)
    taken = {}
    for state in (first, second, first, second, third, first, second):
        got = candidate_features(state, queries, cands, compiled=True)
        want = candidate_features(state, queries, cands, compiled=False)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
        taken.setdefault(id(state), []).append(row_kernel._state_arguments(state))
    # first and second alternating: each taken once; after third, first (pushed out) afresh
    assert taken[id(second)][0] is taken[id(second)][1]
    assert taken[id(first)][0] is taken[id(first)][1] is not taken[id(first)][2]


@pytest.mark.parametrize("ragged", ["short_query", "short_ranks", "narrow_ranks", "narrow_scores"])
def test_candidate_columns_of_other_lengths_are_numpys_error_not_a_read_past_them(
    ragged: str,
) -> None:
    """Candidates whose query, ranks or scores column holds fewer rows or source columns than
    the items (``Candidates`` checks nothing): numpy's path raises ValueError, and so must the
    compiled one, which declines the batch rather than read past the shorter array."""
    _compiled_or_skip()
    rng = np.random.default_rng(3)
    state = _state(rng)
    queries, cands = _batch(rng, 4, state.item_category)
    if ragged == "short_query":
        cands = replace(cands, query=cands.query[:-3].copy())
    elif ragged == "short_ranks":
        cands = replace(cands, source_ranks=cands.source_ranks[:-3].copy())
    elif ragged == "narrow_ranks":
        cands = replace(cands, source_ranks=cands.source_ranks[:, :2].copy())
    else:
        cands = replace(cands, source_scores=cands.source_scores[:, :2].copy())
    library, context = row_kernel.loaded(), context_columns(queries.moments, queries.context, [])
    assert library is not None
    out = np.empty((64, len(cands)), np.float32)
    assert not row_kernel.write_columns(library, out, state, queries, cands, context)
    for compiled in (False, True):
        with pytest.raises(ValueError):
            candidate_features(state, queries, cands, compiled=compiled)


def test_a_states_arguments_hold_the_copies_they_point_into() -> None:
    """A state whose item popularity, price and user events are float64 (copied to float32 for
    the pass): every address the pass is handed is one of the state's own arrays or of a copy
    its arguments hold, so none is freed while they are kept. (A freed copy of 80 floats goes
    to numpy's small-block cache, not to free: even the sanitizers would not see it read.)"""
    rng = np.random.default_rng(13)
    state = replace(
        _state(rng),
        item_popularity=rng.random(N_ITEMS),
        item_price=rng.random(N_ITEMS),
        user_events=rng.random(N_USERS),
    )
    arguments = row_kernel._state_arguments(state)
    assert arguments is not None

    def addresses(arrays: Iterable[object]) -> set[int]:
        return {a.__array_interface__["data"][0] for a in arrays if isinstance(a, np.ndarray)}

    matrices = (state.user_category_share, state.user_category_last, state.user_property_share)
    own = addresses(getattr(state, name) for name in state.__slots__) | addresses(
        part for m in matrices for part in (m.indptr, m.indices, m.data)
    )
    held = addresses(arguments.arrays)
    # the arguments' addresses: the ints among them past any count or width they also hold
    pointers = {a for a in (*arguments.before, *arguments.after) if type(a) is int and a > 1 << 20}
    assert len(held - own) == 4  # the three float64 columns, the categorical flags as uint8
    assert pointers <= own | held
