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
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.ranking.context import DEVICES, parse_context
from recsmith.serving import create_app

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


def replay_latest(
    pipeline: Pipeline, events: pd.DataFrame, url: str, device: str | None = None
) -> None:
    """Each user of ``events`` asks ``pipeline``, served over the store at ``url`` with every
    query's feature rows sampled, once: at the moment of their latest event (the pipeline's
    clock) and from that event's device, or from ``device`` (a shifted traffic). As the training
    profile asked for them (``monitoring.features``): unchanged traffic computes the very
    rows it profiled. The server stores its samples as it stops."""
    latest = events.sort_values("ts").groupby("user_id").tail(1)
    moment = [0.0]
    pipeline.clock = lambda: moment[0]  # the copies the server makes share this clock
    settings = Settings(
        store={"url": url},
        serving={"require_keys": False},
        monitor={"feature_sample_every": 1, "feature_rows_per_minute": 1_000_000, "refresh_s": 0},
    )
    with TestClient(create_app(settings, bundle=pipeline)) as client:
        for user, ts, context in latest[["user_id", "ts", "context"]].itertuples(index=False):
            moment[0] = ts / 1e6
            asked = device or parse_context(context)["device"]
            got = client.get(f"/v1/users/{user}/recommendations", params={"device": asked})
            if got.status_code != 200:
                raise AssertionError(got.text)
