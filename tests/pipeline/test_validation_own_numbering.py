"""A validation past breaks ties as a model trained on that past alone would (review rv27a).

Training numbers items by their first event (``Interactions.from_events``). A latest-item split's
past lacks each user's latest event, so the full data's numbering counts the held-out events: an
item first seen in a held-out event is numbered before items the past saw earlier, and where
scores tie (popularity's equal counts, zero scores) it comes first — ahead of where a runtime
trained on the past alone, which numbers it by its first event *there*, would put it.

The case, by hand (one view an hour apart, in this order):

    A: a, y      B: x, y, b

Each user's latest item is held out (A's y, B's b). The full data numbers a, y, x, b (y's first
event is A's, held out); the past (A: a; B: x, y) numbers a, x, y. Popularity counts one view
each of a, x and y in the past: a three-way tie. A has seen a, so popularity's list for A is
``y, x`` under the full numbering (NDCG@10 1 on A's held-out y) and ``x, y`` under the past's own
(NDCG@10 1/log2(3) = 0.631). B's held-out b has no event in the past: unknown, 0 either way.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from test_validation_known_items import hourly_views

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.pipeline.calibration import _Scorer, alone, with_popularity
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.source_tuning import known_items, tune_sources
from recsmith.pipeline.validation import latest_item_split, time_cut_split

WEIGHTS = EventSettings().weights
RANK_2 = 1 / np.log2(3)


CASE = [("A", "a"), ("A", "y"), ("B", "x"), ("B", "y"), ("B", "b")]


def _config(model: str = "popular", **extra: object) -> PipelineConfig:
    source = {"name": "pop", "model": model, "quota": 50, **extra}
    return PipelineConfig.model_validate(
        {"retrieval": {"sources": [source]}, "ranking": {"enabled": False}}
    )


def test_the_past_numbers_its_items_by_their_first_event_in_the_past() -> None:
    full = Interactions.from_events(hourly_views(CASE), WEIGHTS)
    assert full.items.external_ids.tolist() == ["a", "y", "x", "b"]
    val = latest_item_split(full, max_users=100)
    # b's only event is held out: numbered after every item the past saw, as a catalogue item
    assert val.past.items.external_ids.tolist() == ["a", "x", "y", "b"]
    own = Interactions.from_events(hourly_views([CASE[0], CASE[2], CASE[3]]), WEIGHTS)
    assert own.items.external_ids.tolist() == ["a", "x", "y"]  # the past on its own
    # the truth and the full data's item of each of the past's columns follow that numbering
    users = full.users.to_external(val.users).tolist()
    held = val.past.items.to_external(val.truth.indices).tolist()
    assert dict(zip(users, held, strict=True)) == {"A": "y", "B": "b"}
    assert val.items is not None
    assert full.items.to_external(val.items).tolist() == ["a", "x", "y", "b"]


def test_popularity_ties_break_as_a_model_trained_on_the_past_alone_would() -> None:
    full = Interactions.from_events(hourly_views(CASE), WEIGHTS)
    val = latest_item_split(full, max_users=100)
    config = with_popularity(_config())
    scorer = _Scorer(config, val, ItemAttributes.from_items([], full.items, 8), full)
    ndcg = scorer.ndcg(scorer.candidates(alone(config, "pop")))
    by_user = dict(zip(full.users.to_external(val.users).tolist(), ndcg.tolist(), strict=True))
    assert by_user == {"A": pytest.approx(RANK_2), "B": 0.0}


def test_the_item_attributes_follow_the_past_numbering() -> None:
    # new arrivals read each item's creation time by index: x newest, then y (a, b older), so
    # A (who saw a) is served x, y: its held-out y at rank 2 — not at rank 1, where creation
    # times still in the full numbering (x's at index 2, y's place in the past) would put it
    day = 86_400
    made = {"a": 1, "b": 2, "y": 3, "x": 4}
    items = [
        Item(item_id=i, created_at=datetime.fromtimestamp(d * day, tz=UTC)) for i, d in made.items()
    ]
    full = Interactions.from_events(hourly_views(CASE), WEIGHTS)
    val = latest_item_split(full, max_users=100)
    new = {"retrieval": {"sources": [{"name": "new", "kind": "new_arrivals", "quota": 50}]}}
    config = with_popularity(PipelineConfig.model_validate({**new, "ranking": {"enabled": False}}))
    scorer = _Scorer(config, val, ItemAttributes.from_items(items, full.items, 8), full)
    ndcg = scorer.ndcg(scorer.candidates(alone(config, "new")))
    by_user = dict(zip(full.users.to_external(val.users).tolist(), ndcg.tolist(), strict=True))
    assert by_user == {"A": pytest.approx(RANK_2), "B": 0.0}


def test_a_source_grid_breaks_ties_by_the_past_numbering_too() -> None:
    # ``tune``'s holdout (each user's latest item): popularity, over a one-value grid
    full = Interactions.from_events(hourly_views(CASE), WEIGHTS)
    _, report = tune_sources(_config("popular", tune={"half_life_days": [None]}), full)
    assert report["users"] == 2
    assert list(report["pop"]["ndcg@10"].values()) == [
        pytest.approx(RANK_2 / 2, abs=1e-5)
    ]  # 5 decimals


def test_a_source_grid_blocks_the_catalogues_items_in_the_past_numbering() -> None:
    # A: a, h   B: x, h, b — the full data numbers a, h, x, b, c (c: catalogue only, cold); the
    # past (A: a; B: x, h) numbers a, x, h, b, c. h is unavailable: serving never shows it, so
    # A's held-out h is no hit (B's b has no event in the past): 0. Blocking h's index in the
    # full numbering (1) would block x in the past's and let popularity propose h to A (1.0)
    rows = [("A", "a"), ("A", "h"), ("B", "x"), ("B", "h"), ("B", "b")]
    listed = [Item(item_id=i, available=i != "h") for i in ["a", "h", "x", "b", "c"]]
    full = Interactions.from_events(
        hourly_views(rows), WEIGHTS, catalog=ItemCatalog.from_items(listed)
    )
    val = latest_item_split(full, max_users=100)
    assert val.past.items.external_ids.tolist() == ["a", "x", "h", "b", "c"]
    known = known_items(val.past, full, val.items)
    assert val.past.items.to_external(np.flatnonzero(known)).tolist() == ["a", "x", "c"]
    with pytest.raises(ValueError, match="own item numbering"):
        known_items(val.past, full)  # the map left out: refused, not silently misread
    _, report = tune_sources(_config("popular", tune={"half_life_days": [None, 1.0]}), full)
    assert report["users"] == 2
    assert set(report["pop"]["ndcg@10"].values()) == {0.0}


def test_a_time_cut_keeps_the_full_numbering_which_is_its_own() -> None:
    # a time cut's past is a prefix of the events in time order: its first events are the
    # full data's, so its numbering is the same (and nothing is copied to renumber it)
    rows = [("A", "a"), ("B", "x"), ("A", "y"), ("B", "y"), ("A", "b"), ("B", "a")]
    full = Interactions.from_events(hourly_views(rows), WEIGHTS)
    val = time_cut_split(full, min_users=1, share=0.34, max_users=100)
    assert val is not None and val.items is None
    assert val.past.items is full.items
