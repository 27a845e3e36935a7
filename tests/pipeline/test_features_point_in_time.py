"""Features: the same code offline and online gives the same values, and training features see
only the past."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.registry import create
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.source_tuning import holdout_at, latest_ranks
from recsmith.pipeline.training import (
    _window_examples,
    label_windows,
    latest_window,
    recent_items,
    retrieve,
    train_ranker,
)
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
        assert set(w.users.tolist()) == _new_label_users(data, w.past, w.labels)
    assert len(label_windows(data, 0.1, enough=1)) == 1  # one window when it suffices


def _new_label_users(data: Interactions, past: np.ndarray, labels: np.ndarray) -> set[int]:
    """Users with a past and a label pair they never touched there, its weights summing above 0
    (pandas over the events: an oracle apart from ``new_to_users``)."""
    frame = pd.DataFrame({"u": data.event_users, "i": data.event_items, "w": data.event_weights})
    seen = set(zip(frame.u[past], frame.i[past], strict=True))
    net = frame[labels].groupby(["u", "i"])["w"].sum()
    return {int(u) for (u, i), w in net.items() if w > 0 and (u, i) not in seen} & set(
        frame.u[past].tolist()
    )


def test_without_time_order_one_random_window_holds_out_a_share(events: pd.DataFrame) -> None:
    timeless = events.assign(ts=events["ts"].iloc[0])  # totals only, as Last.fm's play counts
    data = Interactions.from_events(timeless, EventSettings().weights)
    windows = label_windows(data, 0.2, enough=10**9, max_windows=3, seed=3)
    assert len(windows) == 3
    assert not np.any(np.sum([w.labels for w in windows], axis=0) > 1)  # disjoint draws
    for w in windows:
        assert np.array_equal(w.past, ~w.labels) and 0.15 < w.labels.mean() < 0.25
        assert set(w.users.tolist()) == _new_label_users(data, w.past, w.labels)
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


#: A tiny log, one event a second in this order. Each user's latest event: a's x (5), c's r (7),
#: b's s (8), e's p (11, an item e had before); d has one item, so no latest item to learn from.
TINY = [
    ("a", "p", 5.0),  # 0
    ("b", "x", 5.0),  # 1
    ("a", "q", 5.0),  # 2
    ("c", "x", 5.0),  # 3
    ("b", "q", 5.0),  # 4
    ("a", "x", 5.0),  # 5  a's latest
    ("d", "p", 5.0),  # 6  d's only event: stays in the past
    ("c", "r", 5.0),  # 7  c's latest
    ("b", "s", 5.0),  # 8  b's latest
    ("e", "p", 5.0),  # 9
    ("e", "q", 5.0),  # 10
    ("e", "p", 5.0),  # 11 e's latest (a repeat)
]


def _events_of(data: Interactions, mask: np.ndarray) -> set[tuple[str, str, int]]:
    """(user, item, second) of the events in ``mask``: an oracle independent of event order."""
    users = data.users.to_external(data.event_users[mask])
    items = data.items.to_external(data.event_items[mask])
    seconds = data.event_ts[mask] // 1_000_000 - 1_700_000_000
    return set(zip(users.tolist(), items.tolist(), seconds.tolist(), strict=True))


def test_latest_label_window_is_each_users_latest_event() -> None:
    data = Interactions.from_events(rating_events(TINY), EventSettings().weights)
    everything = _events_of(data, np.ones(len(data.event_ts), bool))
    (window,) = label_windows(data, 0.1, enough=1, protocol="latest")
    labels = {("a", "x", 5), ("c", "r", 7), ("b", "s", 8), ("e", "p", 11)}
    assert _events_of(data, window.labels) == labels
    assert _events_of(data, window.past) == everything - labels  # d's only event stays
    assert not np.any(window.labels & window.past)
    # e's latest is a repeat: a label event, but no new item, so no user of the window
    assert sorted(data.users.to_external(window.users).tolist()) == ["a", "b", "c"]
    # "both": that window first, then the time cuts exactly as "time" draws them
    both = label_windows(data, 0.2, enough=10**9, max_windows=2, protocol="both")
    cuts = label_windows(data, 0.2, enough=10**9, max_windows=2)
    assert len(both) == 3 and len(cuts) == 2
    assert np.array_equal(both[0].labels, window.labels)
    for mine, theirs in zip(both[1:], cuts, strict=True):
        assert np.array_equal(mine.labels, theirs.labels)
        assert np.array_equal(mine.past, theirs.past)


def test_a_latest_items_example_never_sees_its_own_label_event() -> None:
    """a's example labelled by x (second 5): x's popularity is the 2 users before it (b, c),
    not 3, and a has 2 events behind it, not 3 — features from the past without the labels."""
    data = Interactions.from_events(rating_events(TINY), EventSettings().weights)
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "pop", "model": "popular", "quota": 10}]},
            "ranking": {"label_protocol": "latest"},
        }
    )
    attrs = ItemAttributes.from_items([], data.items)
    (window,) = label_windows(data, 0.1, enough=1, protocol="latest")
    rng = np.random.default_rng(0)
    cands, labels, features, users, state = _window_examples(config, data, attrs, window, 100, rng)
    names = feature_names(cands.sources, state)
    a = int(np.flatnonzero(data.users.to_external(users) == "a")[0])
    x = int(data.items.to_index(np.array(["x"]))[0])
    row = np.flatnonzero((cands.query == a) & (cands.items == x))
    assert len(row) == 1 and labels[row[0]]  # a's latest item, a positive
    assert features[row[0], names.index("item_popularity")] == 2.0
    assert features[row[0], names.index("user_events")] == 2.0
    # every labelled row, by hand: its item's users before the labels (r and s: none)
    before = {"x": 2.0, "r": 0.0, "s": 0.0}
    for r in np.flatnonzero(labels):
        item = data.items.to_external(cands.items[[r]])[0]
        assert features[r, names.index("item_popularity")] == before[item]
    # e's latest is a repeat, not new to e: e gives no example
    assert data.users.to_external(users).tolist() == ["a", "b", "c"]


def test_the_ranker_learns_from_the_protocol_its_config_names(
    config: PipelineConfig, events: pd.DataFrame, items: list[Item]
) -> None:
    """``ranking.label_protocol = "latest"``: one window, labelled by one event of each user with
    two distinct items or more (counted here by pandas)."""
    data = Interactions.from_events(events, EventSettings().weights)
    attrs = ItemAttributes.from_items(items, data.items)
    # min_queries low: most of the simulation's users repeat an item last (no example)
    ranking = config.ranking.model_copy(update={"label_protocol": "latest", "min_queries": 10})
    _, report = train_ranker(config.model_copy(update={"ranking": ranking}), data, attrs)
    pairs = pd.DataFrame({"u": data.event_users, "i": data.event_items})
    labelled = int((pairs.groupby("u")["i"].nunique() >= 2).sum())
    assert report["windows"] == 1.0
    assert report["label_share"] == pytest.approx(labelled / len(pairs))


def _pop_config(protocol: str, min_queries: int, share: float = 0.1) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "pop", "model": "popular", "quota": 10}]},
            "ranking": {
                "label_protocol": protocol,
                "min_queries": min_queries,
                "label_share": share,
            },
        }
    )


def test_a_window_without_a_new_positive_label_gives_no_example_and_no_crash() -> None:
    """Review rv30r M1. 40 users with three early items each, then late one new item, then a
    repeat of their first item (each user's latest event): the "latest" window has 40 label
    events and not one new item, so no ranker ("too_few_queries", 0 queries) — it crashed
    training. "both" skips that empty window and trains on the time cut alone, as "time" does.
    Every event rated 0 (no positive label anywhere): "time" also says so instead of crashing."""
    rows = []
    for k in range(40):
        rows += [(f"u{k}", f"i{(k + j) % 7}", 5.0) for j in (0, 1, 3)]
    for k in range(40):
        rows += [(f"u{k}", f"j{k % 5}", 5.0), (f"u{k}", f"i{k % 7}", 5.0)]
    data = Interactions.from_events(rating_events(rows), EventSettings().weights)
    attrs = ItemAttributes.from_items([], data.items)
    latest = train_ranker(_pop_config("latest", 10, 0.3), data, attrs)[1]
    assert latest["outcome"] == "too_few_queries" and latest["queries"] == 0.0
    time = train_ranker(_pop_config("time", 10, 0.3), data, attrs)[1]
    both = train_ranker(_pop_config("both", 10, 0.3), data, attrs)[1]
    assert time["outcome"] in ("kept", "not_better") and time["queries"] > 0
    assert both["windows"] == time["windows"] + 1  # the latest window, counted but empty
    assert both["queries"] == time["queries"] and both["outcome"] == time["outcome"]
    zero = [(f"u{k % 15}", f"i{(k * 7) % 11}", 0.0) for k in range(90)]
    data = Interactions.from_events(rating_events(zero), EventSettings().weights)
    attrs = ItemAttributes.from_items([], data.items)
    for protocol in ("time", "latest", "both"):
        report = train_ranker(_pop_config(protocol, 10), data, attrs)[1]
        assert report["outcome"] == "too_few_queries" and report["queries"] == 0.0


def test_min_queries_counts_only_users_with_a_new_latest_item() -> None:
    """Review rv30r L1. 200 users, three items each, then a latest event: users 0–29 take an
    item new to them ((k + 7) mod 13, none of k, k + 1, k + 4 mod 13), the other 170 repeat
    their first. 30 queries can be labelled, fewer than min_queries 100: no ranker — the guard
    counted 200 and trained on 30."""
    rows = []
    for k in range(200):
        rows += [(f"u{k}", f"i{(k + j) % 13}", 5.0) for j in (0, 1, 4)]
    for k in range(200):
        rows.append((f"u{k}", f"i{(k + 7) % 13}" if k < 30 else f"i{k % 13}", 5.0))
    data = Interactions.from_events(rating_events(rows), EventSettings().weights)
    attrs = ItemAttributes.from_items([], data.items)
    report = train_ranker(_pop_config("latest", 100), data, attrs)[1]
    assert report["outcome"] == "too_few_queries" and report["queries"] == 30.0
    assert report["users"] == 30.0


def test_ties_at_the_label_moment_break_as_the_validation_fold_breaks_them() -> None:
    """Review rv30r L4. u buys a, b and c in one second, its latest moment: which of them labels
    is the seeded draw the leave-last-out fold holds out with (``holdout_at`` at place 0), seed
    by seed; the two others stay in u's past."""
    pairs = ["uz", "ua", "ub", "uc", "va", "vb", "wc", "wz"]
    events = rating_events([(p[0], p[1], 5.0) for p in pairs])
    events.loc[1:3, "ts"] = events.loc[1, "ts"]
    data = Interactions.from_events(events, EventSettings().weights)
    picked = set()
    for seed in range(8):
        window = latest_window(data, seed)
        fold = holdout_at(data, latest_ranks(data, seed), 0, seed, 10**6)
        held = dict(
            zip(
                data.users.to_external(fold.users).tolist(),
                fold.past.items.to_external(fold.held).tolist(),
                strict=True,
            )
        )
        (label,) = _events_of(data, window.labels & (data.event_users == 0))
        assert label[1] == held["u"]
        picked.add(label[1])
    assert picked == {"a", "b", "c"}  # the draw does decide among the three
