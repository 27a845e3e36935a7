"""A validation split proposes only the items its past knows (BENCHMARKS §105).

A split keeps the full data's item numbering, so an item whose only events are held out still has
a column in the past; a model that scores every column (EASE scores such an item 0, ahead of any
negative score) would propose it and "hit" the held-out item itself, which serving never can.
The case here is built so that the answer is known by hand: seven users view ``a`` then an item
nobody else ever views (``c0``..``c6``), and two users view ``a`` then ``b``, which an eighth
user viewed before (``b`` then ``d``, ``d`` nobody else's). Each user's latest item is held out:
every ``c``, and ``d``, is unknown to the past, so no source fitted on it can serve them — NDCG 0
for those eight users, whatever the source; ``b`` is known (the eighth user's past) and can be hit.
A catalogue listing every item changes none of that (training imports one): a listed item with
events is known only through the past's events, and only a listed item nobody ever viewed (and
that is available) is known without them, as serving would know it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.pipeline.calibration import _Scorer, alone, with_popularity
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.source_tuning import known_items, tune_sources
from recsmith.pipeline.training import fit_models
from recsmith.pipeline.validation import latest_item_split, time_cut_split

WEIGHTS = EventSettings().weights
UNKNOWN_USERS = [f"u{n}" for n in range(7)] + ["w"]


def views(by_step: bool = False) -> pd.DataFrame:
    """The case of the module docstring, events an hour apart: each user's two in turn, or
    (``by_step``) every user's first view before anyone's second, so that a time cut at the
    latest half holds out each user's second item as the latest-item split does."""
    pairs = [(f"u{n}", ("a", f"c{n}")) for n in range(7)]
    pairs += [(v, ("a", "b")) for v in ("v0", "v1")] + [("w", ("b", "d"))]
    if by_step:
        rows = [(u, items[step]) for step in (0, 1) for u, items in pairs]
    else:
        rows = [(u, item) for u, items in pairs for item in items]
    return hourly_views(rows)


def hourly_views(rows: list[tuple[str, str]]) -> pd.DataFrame:
    """``(user, item)`` views an hour apart, in the order given (test_validation_own_numbering's
    events too)."""
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


def _known(catalog: ItemCatalog | None) -> list[str]:
    full = Interactions.from_events(views(), WEIGHTS, catalog=catalog)
    val = latest_item_split(full, max_users=100)
    known = known_items(val.past, full, val.items)
    return sorted(val.past.items.to_external(np.flatnonzero(known)).tolist())


def test_the_items_only_held_out_events_hold_are_unknown_to_the_past() -> None:
    assert _known(None) == ["a", "b"]


def test_a_catalogue_adds_only_the_items_nobody_viewed_that_serving_can_show() -> None:
    # c3's only event is held out: listing it does not make it known; z, never viewed, is
    assert _known(ItemCatalog.from_items([Item(item_id="c3"), Item(item_id="z")])) == [
        "a",
        "b",
        "z",
    ]
    # serving never shows an unavailable item, viewed (b) or not (y)
    off = [Item(item_id="b", available=False), Item(item_id="y", available=False)]
    assert _known(ItemCatalog.from_items([*off, Item(item_id="z")])) == ["a", "z"]


def _config(tune: dict[str, list[object]] | None = None, model: str = "ease") -> PipelineConfig:
    source = {"name": model, "model": model, "quota": 50, **({"tune": tune} if tune else {})}
    return PipelineConfig.model_validate(
        {"retrieval": {"sources": [source]}, "ranking": {"enabled": False}}
    )


#: every item of ``views`` listed, and two nobody viewed
EVERY_ITEM = ItemCatalog.from_items(
    [Item(item_id=i) for i in ["a", "b", "d", *(f"c{n}" for n in range(7)), "z1", "z2"]]
)


@pytest.mark.parametrize("catalog", [None, EVERY_ITEM], ids=["no catalogue", "catalogue"])
@pytest.mark.parametrize("protocol", ["latest item", "time cut"])
def test_no_source_scores_a_hit_on_an_item_its_validation_past_never_saw(
    protocol: str, catalog: ItemCatalog | None
) -> None:
    full = Interactions.from_events(views(protocol == "time cut"), WEIGHTS, catalog=catalog)
    if protocol == "time cut":
        val = time_cut_split(full, min_users=1, share=0.49, max_users=100)
        assert val is not None and val.truth.sum() == len(val.users)  # each user's second item
    else:
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


def test_a_source_scoring_an_unknown_item_above_zero_still_does_not_propose_it() -> None:
    # content scores every c (sharing a's category) above 0 for the users who viewed a
    items = [Item(item_id=i, categories=["x"]) for i in ["a", *(f"c{n}" for n in range(7))]]
    catalog = ItemCatalog.from_items([*items, *(Item(item_id=i) for i in ("b", "d"))])
    full = Interactions.from_events(views(), WEIGHTS, catalog=catalog)
    val = latest_item_split(full, max_users=100)
    content = {"name": "content", "model": "content", "quota": 50}
    config = with_popularity(
        PipelineConfig.model_validate(
            {"retrieval": {"sources": [content]}, "ranking": {"enabled": False}}
        )
    )
    attrs = ItemAttributes.from_items(items, full.items, 8)
    scorer = _Scorer(config, val, attrs, full)
    model = fit_models(alone(config, "content"), val.past)["content"]
    u0 = full.users.to_index(np.array(["u0"], dtype=object))
    top = model.recommend(u0, 1, exclude=val.past.matrix[u0])  # the case holds: a c comes first
    # (the seven c tie; which one a top 1 picks is argpartition's)
    first = val.past.items.to_external(top.ids[0]).tolist()
    assert first[0] in {f"c{n}" for n in range(7)} and top.scores[0, 0] > 0
    ndcg = scorer.ndcg(scorer.candidates(alone(config, "content")))
    users = full.users.to_external(val.users)
    assert (ndcg[np.isin(users, UNKNOWN_USERS)] == 0).all()


def test_a_grid_is_chosen_without_hits_on_items_the_holdout_past_never_saw() -> None:
    # iALS, for which 0 is a score like any other (``with_evidence`` keeps it): an item with no
    # event in the past has an all-0 factor row, so it scores exactly 0 for everyone, above
    # iALS's negative scores, and the nine items a user has not seen all fit in a list of 10;
    # only ``blocked`` keeps c0..c6 and d out. What is left to propose to v0 and v1 (a seen) is
    # b alone: rank 1, NDCG 1 for those two of the 10 held-out users, 0 for the eight others.
    # (EASE proposes nothing to v0 and v1 now: a and b never co-occur, so its 0s there are no
    # evidence and are dropped; without ``blocked`` it would still score 0 here.)
    full = Interactions.from_events(views(), WEIGHTS)
    _, report = tune_sources(_config({"regularization": [0.05, 5.0]}, "ials"), full)
    assert report["users"] == 10
    for value in report["ials"]["ndcg@10"].values():
        assert value == pytest.approx(2 / 10)
