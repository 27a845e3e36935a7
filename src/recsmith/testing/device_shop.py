"""A simulated shop where the device decides what is bought, with a pipeline whose ranker learns
it (the shop of ``tests/cli/test_cli_context_device_shop.py``, in memory): feature drift tests
and benchmarks need a ranker that is kept, and a context feature to shift.

400 users; in each 10-day block a user shops on one device (a coin flip) and views 2 items of
that device's group (``m*`` on mobile, ``d*`` on desktop; Zipf-like within the group).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.ranking.context import DEVICES

USERS = 400
PER_GROUP = 40
BLOCKS = 5
DAY = 86_400
START = 1_700_000_000
#: the device codes of the shop's two devices (``ranking.context.DEVICES``)
DEVICE_CODES = {name: DEVICES[name] for name in ("mobile", "desktop")}


def device_shop_records(users: int = USERS, seed: int = 7) -> list[dict[str, Any]]:
    """The shop's events as a client would send them (no ids: the door gives them)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, PER_GROUP + 1)
    weights /= weights.sum()
    records = []
    for u in range(users):
        for block in range(BLOCKS):
            mobile = bool(rng.random() < 0.5)
            for n in rng.choice(PER_GROUP, 2, replace=False, p=weights).tolist():
                records.append(
                    {
                        "user_id": f"u{u}",
                        "item_id": f"{'m' if mobile else 'd'}{n}",
                        "event_type": "view",
                        "timestamp": START + block * 10 * DAY + int(rng.integers(5 * DAY)),
                        "context": {"device": "mobile" if mobile else "desktop"},
                    }
                )
    return records


def device_shop_events(users: int = USERS, seed: int = 7) -> pd.DataFrame:
    """``device_shop_records`` validated as the store would keep them."""
    frame, rejected = validate_events(device_shop_records(users, seed), EventSettings())
    if rejected:
        raise AssertionError(f"the device shop's events were rejected: {rejected[:1]}")
    return pd.DataFrame(frame)


def device_shop_pipeline(events: pd.DataFrame) -> Pipeline:
    """Item-kNN and popularity, ranked with context features (the ranker is kept: it learns
    that the device decides)."""
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 60},
                    {"name": "pop", "model": "popular", "quota": 80},
                ]
            },
            "ranking": {"label_share": 0.2, "params": {"n_estimators": 60}},
        }
    )
    pipeline = train_pipeline(config, events, dict(EventSettings().weights))
    if pipeline.ranker is None:
        raise AssertionError("the device shop's ranker was not kept")
    return pipeline
