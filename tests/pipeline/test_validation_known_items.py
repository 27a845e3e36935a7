"""A validation split proposes only the items its past knows (BENCHMARKS §105).

A split keeps the full data's item numbering, so an item whose only events are held out still has
a column in the past; a model that scores every column (EASE scores such an item 0, ahead of any
negative score) would propose it and "hit" the held-out item itself, which serving never can.
The case here is built so that the answer is known by hand: seven users view ``a`` then an item
nobody else ever views (``c0``..``c6``), and two users view ``a`` then ``b``, which an eighth
user viewed before (``b`` then ``d``, ``d`` nobody else's). Each user's latest item is held out:
every ``c``, and ``d``, is unknown to the past, so no source fitted on it can serve them — NDCG 0
for those eight users, whatever the source; ``b`` is known (the eighth user's past) and can be hit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.pipeline.calibration import _Scorer, alone, with_popularity
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.source_tuning import known_items, tune_sources
from recsmith.pipeline.validation import latest_item_split

WEIGHTS = EventSettings().weights
UNKNOWN_USERS = [f"u{n}" for n in range(7)] + ["w"]


def views() -> pd.DataFrame:
    """The case of the module docstring: each user's events an hour apart, in their own hour."""
    rows = [(f"u{n}", item) for n in range(7) for item in ("a", f"c{n}")]
    rows += [(v, item) for v in ("v0", "v1") for item in ("a", "b")]
    rows += [("w", "b"), ("w", "d")]
    start = 1_700_000_000_000_000
    return pd.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "item_id": [i for _, i in rows],
            "ts": [start + n * 3_600_000_000 for n in range(len(rows))],
            "event_id": [f"e{n}" for n in range(len(rows))],
            "session_id": None,
            "event_type": "view",
            "value": np.nan,
            "context": None,
        }
    )


def test_the_items_only_held_out_events_hold_are_unknown_to_the_past() -> None:
    full = Interactions.from_events(views(), WEIGHTS)
    val = latest_item_split(full, max_users=100)
    known = full.items.to_external(np.flatnonzero(known_items(val.past)))
    assert sorted(known.tolist()) == ["a", "b"]
    # a catalogue listing an item makes it known: serving proposes catalogue items too
    listed = Interactions.from_events(
        views(), WEIGHTS, catalog=ItemCatalog.from_items([Item(item_id="c3"), Item(item_id="z")])
    )
    val = latest_item_split(listed, max_users=100)
    known = listed.items.to_external(np.flatnonzero(known_items(val.past)))
    assert sorted(known.tolist()) == ["a", "b", "c3", "z"]


def _config(tune: dict[str, list[object]] | None = None) -> PipelineConfig:
    ease = {"name": "ease", "model": "ease", "quota": 50, **({"tune": tune} if tune else {})}
    return PipelineConfig.model_validate(
        {"retrieval": {"sources": [ease]}, "ranking": {"enabled": False}}
    )


def test_no_source_scores_a_hit_on_an_item_its_validation_past_never_saw() -> None:
    full = Interactions.from_events(views(), WEIGHTS)
    val = latest_item_split(full, max_users=100)
    users = full.users.to_external(val.users)
    assert sorted(users.tolist()) == sorted([*UNKNOWN_USERS, "v0", "v1"])
    config = with_popularity(_config())
    scorer = _Scorer(config, val, ItemAttributes.from_items([], full.items, 8), full)
    for name in ("ease", "popularity"):
        ndcg = scorer.ndcg(scorer.candidates(alone(config, name)))
        unknown = np.isin(users, UNKNOWN_USERS)
        assert (ndcg[unknown] == 0).all(), name  # no model trained on the past knows c0..c6, d
        assert (ndcg[~unknown] > 0).all(), name  # b is known: six items fit in every list


def test_a_grid_is_chosen_without_hits_on_items_the_holdout_past_never_saw() -> None:
    full = Interactions.from_events(views(), WEIGHTS)
    _, report = tune_sources(_config({"regularization": [1.0, 500.0]}), full)
    # only v0 and v1 (of 10 held-out users) can be hit; EASE's rows for them are all 0 (a and
    # b never co-occur), so the unknown items' columns cannot come first: the known b does,
    # at rank 1, 2, or further, in both
    for value in report["ease"]["ndcg@10"].values():
        assert 0 < value <= 2 / 10
