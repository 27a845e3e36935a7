"""Features: the same code offline and online gives the same values, and training features see
only the past."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.registry import create
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.training import label_windows, recent_items, retrieve
from recsmith.ranking.features import FeatureState, candidate_features, feature_names
from recsmith.retrieval.queries import Queries
from recsmith.retrieval.sources import ModelSource
from recsmith.testing.recommender import rating_events


def test_offline_batch_equals_online_single_requests(
    events: pd.DataFrame, items: list[Item]
) -> None:
    data = Interactions.from_events(
        events, EventSettings().weights, catalog=ItemCatalog.from_items(items)
    )
    attrs = ItemAttributes.from_items(items, data.items)
    state = FeatureState.build(data, attrs.category, attrs.price, attrs.created_ts)
    sources = [ModelSource("knn", create("itemknn").fit(data))]
    users = np.arange(25, dtype=np.int32)
    recent = recent_items(data, 5)
    context = tuple({"device": "mobile", "hour": h % 24} for h in range(len(users)))
    batch = Queries(users, recent[users], data.matrix[users], context)
    cands = retrieve(sources, [15], batch)
    offline = candidate_features(state, batch, cands)
    # recent_category_share, by hand: the share of the query's recent items in the item's category
    column = feature_names(cands.sources, state).index("recent_category_share")
    for r in range(0, len(cands), 7):
        mine = state.item_category[batch.recent[[cands.query[r]]].indices]
        cat = state.item_category[cands.items[r]]
        expected = (mine == cat).sum() / max(len(mine), 1) if cat >= 0 else 0.0
        assert offline[r, column] == np.float32(expected)
    for q in range(len(users)):  # one request at a time, as the server does
        single = Queries(
            users[q : q + 1],
            recent[users[q : q + 1]],
            data.matrix[users[q : q + 1]],
            context[q : q + 1],
        )
        online = candidate_features(state, single, retrieve(sources, [15], single))
        np.testing.assert_array_equal(online, offline[cands.query == q])


def test_feature_state_sees_only_events_before_the_cut(
    events: pd.DataFrame, items: list[Item]
) -> None:
    data = Interactions.from_events(events, EventSettings().weights)
    cut = np.quantile(data.event_ts, 0.8)
    past = data.subset(data.event_ts < cut)
    attrs = ItemAttributes.from_items(items, data.items)
    state = FeatureState.build(past, attrs.category, attrs.price, attrs.created_ts)
    before = events[events["ts"] < cut]
    expected = before.groupby("item_id")["user_id"].nunique()
    got = pd.Series(state.item_popularity, index=data.items.external_ids)
    assert (got[expected.index] == expected).all()
    assert got.drop(expected.index).eq(0).all()  # items first seen after the cut: unknown yet
    assert state.reference_ts < cut


def test_label_windows_are_disjoint_cuts_and_every_user_has_a_past(events: pd.DataFrame) -> None:
    data = Interactions.from_events(events, EventSettings().weights)
    windows = label_windows(data, 0.1, enough=10**9, max_windows=3)  # never enough: all 3
    assert len(windows) == 3
    assert not np.any(np.sum([w.labels for w in windows], axis=0) > 1)  # never overlapping
    newest = data.event_ts[windows[0].labels | windows[0].past]
    assert len(newest) == len(data.event_ts)  # the newest window reaches the last event
    for newer, older in itertools.pairwise(windows):  # adjacent, newest first
        assert data.event_ts[older.labels].max() < data.event_ts[newer.labels].min()
        assert np.array_equal(newer.past, older.past | older.labels)
    for w in windows:
        assert data.event_ts[w.past].max() < data.event_ts[w.labels].min()  # features before labels
        assert 0.05 < w.labels.mean() < 0.15  # about a tenth of the events each
        before = set(data.event_users[w.past].tolist())
        assert set(w.users.tolist()) == before & set(data.event_users[w.labels].tolist())
    assert len(label_windows(data, 0.1, enough=1)) == 1  # one window when it suffices


def test_without_time_order_one_random_window_holds_out_a_share(events: pd.DataFrame) -> None:
    timeless = events.assign(ts=events["ts"].iloc[0])  # totals only, as Last.fm's play counts
    data = Interactions.from_events(timeless, EventSettings().weights)
    windows = label_windows(data, 0.2, enough=10**9, max_windows=3, seed=3)
    assert len(windows) == 3
    assert not np.any(np.sum([w.labels for w in windows], axis=0) > 1)  # disjoint draws
    for w in windows:
        assert np.array_equal(w.past, ~w.labels) and 0.15 < w.labels.mean() < 0.25
        before = set(data.event_users[w.past].tolist())
        assert set(w.users.tolist()) == before & set(data.event_users[w.labels].tolist())
        assert len(w.users) > 0.5 * data.n_users
    again = label_windows(data, 0.2, enough=1, seed=3)
    assert len(again) == 1  # one window when it suffices
    assert np.array_equal(again[0].labels, windows[0].labels)  # the seed decides: repeatable


def test_an_item_rated_zero_or_below_is_no_recent_item() -> None:
    """u1 rated x 5, then y 0 (latest), then z -2: only x is a recent item to recommend from
    (and to cite); u2's x nets -4 + 3 = -1, so u2 has none."""
    rows = [
        ("u1", "x", 5.0),
        ("u1", "y", 0.0),
        ("u1", "z", -2.0),
        ("u2", "x", -4.0),
        ("u2", "x", 3.0),
    ]
    events = rating_events(rows)
    data = Interactions.from_events(events, EventSettings().weights)
    recent = recent_items(data, 5)
    got = {
        u: sorted(data.items.to_external(recent[[k]].indices).tolist())
        for k, u in enumerate(data.users.external_ids)
    }
    assert got == {"u1": ["x"], "u2": []}
