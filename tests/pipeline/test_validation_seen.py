"""Validation, the ranker's label windows and the evaluation's truth leave out what serving
leaves out: every item a user had, rated 0 or below too (``Interactions.had``, issue #15).

A release never lists an item its user rated 0 or below, but validation used to exclude only
the past's positive items: such an item was a candidate there (and could be truth), so the
scores a calibration chose by were not those of the lists served. The case, ratings one
second apart in this order, is small enough to score by hand:

====  =========  =========  =================
user  first      second     latest (held out)
====  =========  =========  =================
u1    P 5        B 5        A 4
u2    P 5        B 4        C 4
u3    P 4        A 5        B 4
z     P 0        A 4        B 5
====  =========  =========  =================

In the past (the first two columns) popularity is P (3 users), then A and B (2 each). z rated
P 0, so serving lists z B first: A is z's, P is seen. Validation must score the same: B at
rank 1, NDCG 1 (it was rank 2 behind P, NDCG 1/log2(3), before the fix).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.evaluation.runner import ground_truth
from recsmith.evaluation.split import leave_last_out
from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import _Scorer, alone
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.source_tuning import latest_item_holdout, tune_sources
from recsmith.pipeline.training import LabelWindow, _window_examples, latest_window
from recsmith.pipeline.validation import latest_item_split, time_cut_split
from recsmith.testing.recommender import rating_events

WEIGHTS = EventSettings().weights
HISTORIES = {
    "u1": [("P", 5.0), ("B", 5.0), ("A", 4.0)],
    "u2": [("P", 5.0), ("B", 4.0), ("C", 4.0)],
    "u3": [("P", 4.0), ("A", 5.0), ("B", 4.0)],
    "z": [("P", 0.0), ("A", 4.0), ("B", 5.0)],
}


def ratings(histories: dict[str, list[tuple[str, float]]] = HISTORIES) -> pd.DataFrame:
    """Every user's first rating, then every user's second, …: each user's latest rating is
    among the latest events, so a time cut holds out the same items as the latest-item split."""
    steps = max(map(len, histories.values()))
    rows = [
        (user, *items[step])
        for step in range(steps)
        for user, items in histories.items()
        if step < len(items)
    ]
    return rating_events(rows)


def _popularity_only() -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "pop", "model": "popular", "quota": 10}]},
            "ranking": {"enabled": False},
        }
    )


@pytest.mark.parametrize("protocol", ["latest item", "time cut"])
def test_validation_never_lists_an_item_the_user_rated_zero_before(protocol: str) -> None:
    full = Interactions.from_events(ratings(), WEIGHTS)
    if protocol == "time cut":
        val = time_cut_split(full, min_users=1, share=4 / 12, max_users=100)
        assert val is not None
    else:
        val = latest_item_split(full, max_users=100)
    config = _popularity_only()
    scorer = _Scorer(config, val, ItemAttributes.from_items([], full.items, 8), full)
    cands = scorer.candidates(alone(config, "pop"))
    users = full.users.to_external(val.users).tolist()
    z = users.index("z")
    listed = val.past.items.to_external(cands.items[cands.query == z]).tolist()
    assert "P" not in listed and listed[0] == "B"
    ndcg = dict(zip(users, scorer.ndcg(cands).tolist(), strict=True))
    assert ndcg["z"] == pytest.approx(1.0)  # B at rank 1, as served


def test_an_item_rated_zero_before_is_never_held_out_as_new() -> None:
    # y rated B 0 first and B 5 last: serving never lists B to y again, so B is no truth
    full = Interactions.from_events(
        ratings({**HISTORIES, "y": [("B", 0.0), ("P", 5.0), ("B", 5.0)]}), WEIGHTS
    )
    held = latest_item_holdout(full, seed=0, max_users=100)
    # (u2's C is held out too: an item the past does not know is scored, and never hit)
    assert sorted(full.users.to_external(held.users).tolist()) == ["u1", "u2", "u3", "z"]
    assert "y" not in full.users.to_external(latest_item_split(full, 100).users).tolist()
    cut = time_cut_split(full, min_users=1, share=5 / 15, max_users=100)
    assert cut is not None and "y" not in full.users.to_external(cut.users).tolist()


def test_a_latest_item_rated_zero_is_truth_in_no_fold() -> None:
    """Review rv30r L5: x's latest rating is C 0 — seen, nothing to hit. The leave-last-out fold
    held it out as truth while the time cut and the ranker's "latest" window drop it; now no
    fold scores x, and all three hold out exactly the other four users (hand count)."""
    full = Interactions.from_events(
        ratings({**HISTORIES, "x": [("P", 5.0), ("A", 4.0), ("C", 0.0)]}), WEIGHTS
    )
    others = ["u1", "u2", "u3", "z"]
    held = latest_item_holdout(full, seed=0, max_users=100)
    assert sorted(full.users.to_external(held.users).tolist()) == others
    cut = time_cut_split(full, min_users=1, share=5 / 15, max_users=100)
    assert cut is not None and sorted(full.users.to_external(cut.users).tolist()) == others
    window = latest_window(full, seed=0)
    assert sorted(full.users.to_external(window.users).tolist()) == others


def test_a_label_window_counts_no_item_the_user_rated_zero_before() -> None:
    # y rated B 0 in the past and B 5 inside the window: no label; z's B is one, and z's
    # candidates leave out P, which z rated 0
    full = Interactions.from_events(
        ratings({**HISTORIES, "y": [("B", 0.0), ("P", 5.0), ("B", 5.0)]}), WEIGHTS
    )
    past = full.event_ts < np.sort(full.event_ts)[10]  # the first two steps
    window = LabelWindow.of(full, past, ~past)
    cands, labels, _, users, _ = _window_examples(
        _popularity_only(),
        full,
        ItemAttributes.from_items([], full.items),
        window,
        100,
        np.random.default_rng(0),
    )
    names = full.users.to_external(users).tolist()
    assert "y" not in names and "z" in names
    z = names.index("z")
    listed = full.items.to_external(cands.items[cands.query == z]).tolist()
    assert "P" not in listed
    positives = full.items.to_external(cands.items[(cands.query == z) & labels]).tolist()
    assert positives == ["B"]


def test_evaluation_truth_drops_an_item_the_user_rated_zero_in_training() -> None:
    train = ratings({"u1": [("P", 5.0), ("B", 4.0)], "z": [("P", 0.0), ("A", 4.0)]})
    test = rating_events([("z", "P", 5.0), ("z", "B", 4.0), ("u1", "A", 3.0)])
    truth = ground_truth(Interactions.from_events(train, WEIGHTS), test, WEIGHTS)
    items = Interactions.from_events(train, WEIGHTS).items
    got = {
        user: sorted(items.to_external(truth.matrix[[row]].indices).tolist())
        for row, user in enumerate(truth.user_ids.tolist())
    }
    assert got == {"u1": ["A"], "z": ["B"]}  # z's P: rated 0 in training, never served again


def test_source_tuning_scores_the_lists_serving_would_give() -> None:
    # each value of the grid gives popularity's order; the held-out users: u1 (A at rank 1),
    # u2 (C, unknown to the past: 0), u3 (B at rank 1) and z (B at rank 1, P being seen):
    # NDCG (1 + 0 + 1 + 1) / 4 (with P listed to z first, B at rank 2: (2 + 1/log2(3)) / 4)
    source = {"name": "pop", "model": "popular", "quota": 10}
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{**source, "tune": {"half_life_days": [1e3, 2e3]}}]},
            "ranking": {"enabled": False},
        }
    )
    _, report = tune_sources(config, Interactions.from_events(ratings(), WEIGHTS))
    assert report["users"] == 4
    assert list(report["pop"]["ndcg@10"].values()) == [pytest.approx(0.75)] * 2


def test_a_recent_source_in_validation_never_lists_an_item_the_user_rated_zero() -> None:
    # EASE from z's recent item A (rated 4; B is held out): P, which u3 rated beside A, scores
    # above 0, and z rated P 0 — serving's exclusions hold P (0/1 rows), so validation's must
    # too, also where a source adds the recent items to them
    full = Interactions.from_events(ratings(), WEIGHTS)
    val = latest_item_split(full, max_users=100)
    recent = {"name": "ease_recent", "model": "ease", "use": "recent", "quota": 10}
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": [recent]}, "ranking": {"enabled": False}}
    )
    scorer = _Scorer(config, val, ItemAttributes.from_items([], full.items), full)
    cands = scorer.candidates(alone(config, "ease_recent"))
    z = full.users.to_external(val.users).tolist().index("z")
    listed = val.past.items.to_external(cands.items[cands.query == z]).tolist()
    assert listed and "P" not in listed


def test_a_held_out_rating_of_zero_or_below_is_no_truth_in_evaluation_as_in_calibration() -> None:
    """w's latest event rates B -2: leave-last-out holds it out, and an item the user disliked
    is no hit to find, so w has no truth (issue #15), as calibration's latest-item fold scores no
    such user. By hand: u1's A and u3's B only."""
    histories = {**HISTORIES, "w": [("P", 5.0), ("A", 4.0), ("B", -2.0)]}
    del histories["u2"], histories["z"]
    events = ratings(histories)
    parts = leave_last_out(events)
    train = Interactions.from_events(parts.train, WEIGHTS)
    truth = ground_truth(train, parts.test, WEIGHTS)
    got = {
        user: train.items.to_external(truth.matrix[[row]].indices).tolist()
        for row, user in enumerate(truth.user_ids.tolist())
    }
    assert got == {"u1": ["A"], "u3": ["B"]}
    full = Interactions.from_events(events, WEIGHTS)
    fold = latest_item_holdout(full, seed=0, max_users=100)
    held = fold.past.items.to_external(fold.held).tolist()
    assert dict(zip(full.users.to_external(fold.users).tolist(), held, strict=True)) == {
        user: items[0] for user, items in got.items()
    }


def test_evaluation_truth_is_a_test_pair_of_net_weight_above_zero() -> None:
    """Two test ratings of one pair sum, as training sums them: u1 rates D 3, then -4 (net -1),
    no truth; E 3 then 0 (net 3) is."""
    train = Interactions.from_events(ratings(), WEIGHTS)
    test = rating_events([("u1", "D", 3.0), ("u1", "D", -4.0), ("u1", "E", 3.0), ("u1", "E", 0.0)])
    truth = ground_truth(train, test, WEIGHTS)
    assert truth.user_ids.tolist() == ["u1"]
    assert truth.matrix.indices.tolist() == [train.n_items + 1]  # E, the second cold item
