"""The validation ranker learns from item attributes in its past's own numbering (review rv28n).

A latest-item past numbers its items by their first event there (``own_item_order``), so the
full data's attributes (category, price, creation time: one row per item, by index) would give
each renumbered item another item's row. Validation's ranker score must be that of a ranker
trained on the past's own attributes, ``ItemAttributes.from_items(items, past.items)``, as the
runtime trained on that past alone would build them — not that of one fed the full data's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.pipeline.calibration import _Protocols, _try_ranker, with_popularity
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.cpu_budget import CpuBudget
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Tried
from recsmith.pipeline.training import train_ranker
from recsmith.pipeline.validation import latest_item_split

N_ITEMS = 60


def _frame(users: list[str], items: list[str], ts: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": users,
            "item_id": items,
            "ts": ts,
            "event_id": None,
            "session_id": None,
            "event_type": "view",
            "value": np.nan,
            "context": None,
        }
    )


def _events() -> pd.DataFrame:
    """200 users of six tastes (10 items each) — plus, first, 60 two-view "pioneers" whose
    latest (held-out) view is the first event of half the items: the past renumbers those."""
    rng = np.random.default_rng(3)
    n = 3000
    user = rng.integers(0, 200, n)
    own = (user % 6) * 10 + rng.integers(0, 10, n)
    item = np.where(rng.random(n) < 0.7, own, rng.integers(0, N_ITEMS, n))
    hours = np.sort(rng.integers(0, 3000, n)) * 3_600_000_000
    views = _frame([f"u{x}" for x in user], [f"i{x}" for x in item], 1_700_000_000_000_000 + hours)
    k = np.arange(2 * 60)
    firsts = [("i0" if j % 2 == 0 else f"i{N_ITEMS - 1 - j // 2}") for j in k]
    pioneers = _frame([f"p{j // 2}" for j in k], firsts, 1_600_000_000_000_000 + k * 1_000_000)
    return pd.concat([pioneers, views], ignore_index=True)


def _items() -> list[Item]:
    """Real attributes that differ between items: category by taste, a price, a creation day."""
    return [
        Item(
            item_id=f"i{n}",
            categories=[f"k{n // 10}"],
            properties={"price": float(n % 7)},
            created_at=datetime.fromtimestamp(n * 86_400, tz=UTC),
        )
        for n in range(N_ITEMS)
    ]


def test_the_validation_ranker_is_trained_on_the_past_numbered_attributes() -> None:
    items = _items()
    events = _events()
    full = Interactions.from_events(
        events, dict(EventSettings().weights), catalog=ItemCatalog.from_items(items)
    )
    attrs = ItemAttributes.from_items(items, full.items, 8)
    pop = {"name": "pop", "model": "popular", "quota": 50}
    knn = {"name": "cf", "model": "itemknn", "quota": 50}
    config = with_popularity(PipelineConfig.model_validate({"retrieval": {"sources": [pop, knn]}}))
    val = latest_item_split(full, 5000)
    assert val.items is not None and (val.items != np.arange(len(val.items))).sum() > 50
    groups = [[val]]
    protocols = _Protocols(config, groups, attrs, full)
    tried = _try_ranker(Tried("base", config, ()), groups, protocols, CpuBudget(1e9), 0.0)
    assert isinstance(tried, Tried), tried
    scorer, by_user = protocols.scorers[0][0], protocols.by_user[0]

    def score(attributes: ItemAttributes) -> np.ndarray:
        ranker, outcome = train_ranker(config, val.past, attributes)
        assert ranker is not None, outcome
        return by_user([scorer.ranked(ranker, config)])

    # the runtime's own attributes for that past give exactly validation's score ...
    own = ItemAttributes.from_items(items, val.past.items, 8)
    assert np.array_equal(tried.per_user[0], score(own))
    # ... and the full data's would not (the case can tell the two apart)
    assert not np.array_equal(score(own), score(attrs))
