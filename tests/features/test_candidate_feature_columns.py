"""Columns of ``candidate_features`` that a batch computes in bulk, against a Python walk over
the candidate rows: how many sources proposed each row, the share of the query's recent items
in the row's category (dense counts for a request batch, sorted keys past ``DENSE_CELLS``), and
the query's context columns repeated on each of its rows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.ranking import features
from recsmith.ranking.context import context_columns
from recsmith.ranking.features import FeatureState, candidate_features, feature_names
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries

N_USERS, N_ITEMS, N_CATS = 30, 80, 6


def _state(rng: np.random.Generator) -> FeatureState:
    category = rng.integers(-1, N_CATS, N_ITEMS).astype(np.int32)  # -1: no category
    share = sparse.random_array((N_USERS, N_CATS), density=0.3, rng=rng, format="csr")
    return FeatureState(
        reference_ts=1_700_000_000_000_000,
        item_popularity=rng.random(N_ITEMS).astype(np.float32),
        item_trend=rng.random(N_ITEMS).astype(np.float32),
        item_age_days=rng.random(N_ITEMS).astype(np.float32),
        item_price=rng.random(N_ITEMS).astype(np.float32),
        item_category=category,
        user_events=rng.random(N_USERS).astype(np.float32),
        user_category_share=share.astype(np.float32),
        user_category_last=share.astype(np.float64),
    )


def _batch(rng: np.random.Generator, n: int) -> tuple[Queries, Candidates]:
    users = rng.integers(-1, N_USERS, n).astype(np.int32)
    recent_sets = [
        rng.choice(N_ITEMS, size=int(rng.integers(0, 6)), replace=False) for _ in range(n)
    ]
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
    query = np.sort(rng.integers(0, n, 8 * n)).astype(np.int32)
    m = len(query)
    ranks = rng.integers(0, 4, (m, 3)).astype(np.int16)  # 0: that source did not propose it
    cands = Candidates(
        n,
        ("a", "b", "c"),
        query,
        rng.integers(0, N_ITEMS, m).astype(np.int32),
        rng.random(m).astype(np.float32),
        np.where(ranks > 0, rng.random((m, 3)), np.nan).astype(np.float32),
        ranks,
    )
    return queries, cands


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_bulk_columns_are_the_walk_over_rows(
    seed: int, dense: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not dense:  # an offline batch's path: searched among the sorted keys
        monkeypatch.setattr(features, "DENSE_CELLS", 0)
    rng = np.random.default_rng(seed)
    state = _state(rng)
    queries, cands = _batch(rng, int(rng.integers(1, 12)))
    got = candidate_features(state, queries, cands)
    names = feature_names(cands.sources, state)
    column = {name: got[:, j] for j, name in enumerate(names)}

    ctx = context_columns(queries.moments, queries.context, [])
    recent = queries.recent
    for r in range(len(cands)):
        q, item = int(cands.query[r]), int(cands.items[r])
        assert column["n_sources"][r] == sum(int(x) > 0 for x in cands.source_ranks[r])
        mine = recent.indices[recent.indptr[q] : recent.indptr[q + 1]].tolist()
        cat = int(state.item_category[item])
        same = sum(int(state.item_category[i]) == cat for i in mine) if cat >= 0 else 0
        want = np.float32(same / np.float32(max(len(mine), 1)))
        assert column["recent_category_share"][r] == want
        for j, name in enumerate(("hour", "day_of_week", "device")):
            a, b = column[name][r], ctx[q, j]
            assert a == b or (np.isnan(a) and np.isnan(b))
