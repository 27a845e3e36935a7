"""``?explain=true`` on a single model: the anchors behind an item-to-item model's item are the
items the list was scored from — a visitor's stored items as well as its recent ones (rv27c
finding 3)."""

from __future__ import annotations

import numpy as np

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.explain.build import explain_answer
from recsmith.features.interactions import Interactions
from recsmith.models.itemknn import ItemKNN


def _release() -> ModelBundle:
    """Two disjoint groups: ``a`` items co-occur only with ``a`` items, ``b`` with ``b``."""
    events = []
    for u in range(30):
        group = "a" if u % 2 else "b"
        for step, i in enumerate(np.random.default_rng(u).choice(5, 3, replace=False)):
            at = 1_700_000_000 + 100 * u + step
            events.append(
                {
                    "user_id": f"u{u}",
                    "item_id": f"{group}{i}",
                    "event_type": "view",
                    "timestamp": at,
                }
            )
    frame, rejected = validate_events(events, EventSettings())
    assert not rejected
    return ModelBundle.train(Interactions.from_events(frame, EventSettings().weights), ItemKNN())


def test_a_visitors_stored_item_anchors_what_it_led_to() -> None:
    """Recent ``a0``, stored ``b0``: each ``b`` item the model listed can only be there because
    of ``b0`` (the groups never meet), so ``b0`` is its one anchor, and ``a0`` each ``a``
    item's; the weight is the model's own similarity (the oracle: ``item_to_item``)."""
    release = _release()
    request = {"recent": [["a0"]], "history": [["b0"]], "extra_seen": [[]]}
    answer, explained = explain_answer(release, "visitor", 6, **request)
    assert answer.tiers == ["session"]
    matrix = release.model.item_to_item
    assert matrix is not None
    listed = answer.lists.item_ids[0].tolist()
    groups = {
        item[0] for item, e in zip(listed, explained, strict=True) if e.sources[0].name != "popular"
    }
    assert groups == {"a", "b"}
    for item, e in zip(listed, explained, strict=True):
        if e.sources[0].name == "popular":
            continue
        anchor = f"{item[0]}0"
        row, col = release.items.to_index([anchor, item])
        assert [(a.item_id, a.weight) for a in e.anchors] == [(anchor, float(matrix[row, col]))]


def test_an_item_rated_zero_is_never_an_anchor() -> None:
    """u1 rated x 5 and y 0: the model scored u1 from x alone (y is seen, not a signal), so z,
    similar to both, is anchored by x only, at the model's own x → z similarity."""
    events = [
        {"user_id": f"o{n}", "item_id": item, "event_type": "view", "timestamp": 1_700_000_000 + n}
        for n in range(10)
        for item in ("x", "y", "z")
    ]
    for item, value in (("x", 5), ("y", 0)):
        at = 1_700_000_100 + value
        events.append(
            {
                "user_id": "u1",
                "item_id": item,
                "event_type": "rating",
                "value": value,
                "timestamp": at,
            }
        )
    frame, rejected = validate_events(events, EventSettings())
    assert not rejected
    release = ModelBundle.train(Interactions.from_events(frame, EventSettings().weights), ItemKNN())
    answer, explained = explain_answer(release, "u1", 5, recent=[[]], history=[[]], extra_seen=[[]])
    assert answer.lists.item_ids[0].tolist() == ["z"]
    matrix = release.model.item_to_item
    assert matrix is not None
    x, z = release.items.to_index(["x", "z"])
    assert [(a.item_id, a.weight) for a in explained[0].anchors] == [("x", float(matrix[x, z]))]
