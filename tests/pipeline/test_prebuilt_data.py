"""``train_pipeline(data=...)`` trains on the caller's Interactions only when they are what it
would have built from its own arguments: the same events, half-life and catalogue."""

from __future__ import annotations

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig

WEIGHTS = dict(EventSettings().weights)
CONFIG = PipelineConfig.model_validate(
    {
        "retrieval": {"sources": [{"name": "pop", "model": "popular", "quota": 5}]},
        "ranking": {"enabled": False},
    }
)
ITEMS = [Item(item_id=i) for i in ["a", "b", "c", "z"]]


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    records = [
        {
            "event_id": f"{u}{i}",
            "user_id": u,
            "item_id": i,
            "event_type": "view",
            "timestamp": 1_700_000_000 + 60 * n,
        }
        for n, (u, i) in enumerate([("u1", "a"), ("u1", "b"), ("u2", "b"), ("u3", "c")])
    ]
    frame, rejected = validate_events(records, EventSettings())
    assert not rejected
    return frame


def built(events: pd.DataFrame, items: list[Item], half_life: float | None) -> Interactions:
    catalog = ItemCatalog.from_items(items) if items else None
    return Interactions.from_events(events, WEIGHTS, half_life_days=half_life, catalog=catalog)


def test_matching_data_trains_as_without_it(events: pd.DataFrame) -> None:
    data = built(events, ITEMS, 30.0)
    given = train_pipeline(CONFIG, events, WEIGHTS, items=ITEMS, half_life_days=30.0, data=data)
    own = train_pipeline(CONFIG, events, WEIGHTS, items=ITEMS, half_life_days=30.0)
    assert given.items == own.items == data.items
    plain = built(events, [], None)
    assert train_pipeline(CONFIG, events, WEIGHTS, data=plain).items == plain.items


@pytest.mark.parametrize(
    ("data_args", "call_args", "named"),
    [
        ((ITEMS, None), {"items": ITEMS, "half_life_days": 30.0}, "half_life_days"),
        ((ITEMS, 30.0), {"items": ITEMS, "half_life_days": None}, "half_life_days"),
        (([], None), {"items": ITEMS}, "catalogue"),
        ((ITEMS, None), {}, "catalogue"),
        ((ITEMS[:3], None), {"items": ITEMS}, "catalogue"),
        ((ITEMS[::-1], None), {"items": ITEMS}, "catalogue"),
    ],
)
def test_a_mismatch_is_refused_naming_it(
    events: pd.DataFrame,
    data_args: tuple[list[Item], float | None],
    call_args: dict[str, object],
    named: str,
) -> None:
    data = built(events, *data_args)
    with pytest.raises(ValueError, match=named):
        train_pipeline(CONFIG, events, WEIGHTS, data=data, **call_args)  # type: ignore[arg-type]


def test_other_events_are_refused(events: pd.DataFrame) -> None:
    data = built(events.iloc[:3], [], None)
    with pytest.raises(ValueError, match="3 events, but events has 4 rows"):
        train_pipeline(CONFIG, events, WEIGHTS, data=data)
