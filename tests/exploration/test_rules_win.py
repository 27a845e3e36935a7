"""Rules win over exploration: whatever the policy draws, no list carries an unavailable,
excluded or filtered-out item, breaks the category cap, or moves a pin — property-based, through
the whole pipeline with each policy on."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.exploration.explorer import ExploreRequest
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.rerank.rules import parse_rules

POLICIES = {
    "epsilon": {
        "policy": "epsilon",
        "epsilon": 0.9,
        "slots": [1, 3, 6],
        "pool": "long_tail",
        "max_events": 40,
    },
    "thompson": {
        "policy": "thompson",
        "epsilon": 1.0,
        "slots": [2, 4],
        "pool": "new_arrivals",
        "new_days": 400.0,
    },
    "source": {
        "policy": "epsilon",
        "epsilon": 1.0,
        "slots": [5],
        "pool": "source",
        "source": "trending",
    },
    "softmax": {"policy": "softmax", "temperature": 2.0, "depth": 20},
}
NOW_US = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1_000_000)


@pytest.fixture(scope="module", params=sorted(POLICIES))
def shop(
    request: pytest.FixtureRequest, simulated: tuple[pd.DataFrame, list[Item]]
) -> tuple[Pipeline, dict[str, Item]]:
    events, items = simulated
    rng = np.random.default_rng(3)
    marked = [it.model_copy(update={"available": bool(rng.random() > 0.2)}) for it in items]
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 40},
                    {"name": "trending", "model": "trending", "quota": 30},
                ]
            },
            "ranking": {"enabled": False},
            "rerank": {"diversity": 0.3, "max_per_category": 3},
            "explore": POLICIES[request.param],
        }
    )
    pipeline = train_pipeline(config, events, dict(EventSettings().weights), items=marked)
    return pipeline, {it.item_id: it for it in marked}


def some(data: st.DataObject, values: list[str], most: int, least: int = 0) -> list[str]:
    """A drawn list of distinct ``values``."""
    return data.draw(st.lists(st.sampled_from(values), min_size=least, max_size=most, unique=True))


EXAMPLES = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@EXAMPLES
@given(data=st.data())
def test_exploration_never_shows_what_the_rules_exclude(
    shop: tuple[Pipeline, dict[str, Item]],
    simulated: tuple[pd.DataFrame, list[Item]],
    data: st.DataObject,
) -> None:
    pipeline, catalog = shop
    events = simulated[0]
    ids = sorted(catalog)
    allowed = some(data, sorted({it.categories[0] for it in catalog.values()}), 8, least=2)
    excluded, blocked = some(data, ids, 30), some(data, ids, 10)
    pins = some(data, [i for i in ids if catalog[i].available], 2)
    rules = parse_rules(
        [
            {"type": "filter", "property": "category", "in": allowed},
            {"type": "exclude", "items": excluded},
            {"type": "blocklist", "items": blocked},
            *({"type": "pin", "item": p, "position": 2 * i + 1} for i, p in enumerate(pins)),
        ]
    )
    users = ["u0001", "u0042", "u0100", "stranger"]
    request_ids = data.draw(st.lists(st.text(min_size=1, max_size=8), min_size=4, max_size=4))
    answer = pipeline.answer(
        users, 10, rules=rules, explore=ExploreRequest(request_ids, now_us=NOW_US)
    )
    for user, listed, p in zip(users, answer.lists.item_ids, answer.propensities, strict=True):
        listed = list(listed)
        had = set(events.loc[events["user_id"] == user, "item_id"])
        assert len(set(listed)) == len(listed) == len(p)
        assert all(0 < x <= 1 for x in p)
        for item_id in listed:
            item = catalog[item_id]
            assert item.available, f"{item_id} is unavailable"
            assert item.categories[0] in allowed, f"{item_id} is outside the category filter"
            assert item_id not in excluded and item_id not in blocked and item_id not in had
        per_category = pd.Series([catalog[i].categories[0] for i in listed]).value_counts()
        assert max(per_category, default=0) <= 3
        for n, pin in enumerate(pins):  # a pin that passes the rules holds its slot
            if pin in listed and len(listed) > 2 * n:
                assert listed.index(pin) == 2 * n, (pin, listed)
                assert p[2 * n] == 1.0


def test_the_policies_do_explore(shop: tuple[Pipeline, dict[str, Item]]) -> None:
    """The property above would hold trivially if nothing were ever explored."""
    pipeline, _ = shop
    users = ["u0001", "u0042", "u0100", "stranger"] * 10
    answer = pipeline.answer(
        users, 10, explore=ExploreRequest([f"r{i}" for i in range(40)], now_us=NOW_US)
    )
    plain = pipeline.answer(users, 10)
    changed = [
        list(a) != list(b) for a, b in zip(answer.lists.item_ids, plain.lists.item_ids, strict=True)
    ]
    assert sum(changed) >= 20
    assert min(min(p) for p in answer.propensities) < 1.0
