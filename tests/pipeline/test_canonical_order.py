"""The same events in any row order train the same pipeline (``in_canonical_order``).

Events sharing a timestamp are common (a rating site saves a batch at once), and tie rules
downstream fell back on row order: which of a user's latest items validation holds out, a user's
recent items, the first-appearance numbering of users and items. A store returns rows by a
content hash, a file in its own order, so the CLI and an in-process run shipped different
calibration choices on the same events (BENCHMARKS §60). Here timestamps are cut to the day, so
most users have several events at their latest time, and the frame is shuffled."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.features.interactions import in_canonical_order
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import default_pipeline_config

DAY_US = 86_400 * 1_000_000


def test_a_shuffled_frame_trains_the_same_pipeline(events: pd.DataFrame) -> None:
    daily = events.assign(ts=events["ts"] // DAY_US * DAY_US)
    latest = daily.groupby("user_id")["ts"].transform("max") == daily["ts"]
    assert (latest.groupby(daily["user_id"]).sum() > 1).mean() > 0.3  # ties are the rule here
    shuffled = daily.sample(frac=1.0, random_state=7).reset_index(drop=True)
    config = default_pipeline_config()
    config = config.model_copy(
        update={"ranking": config.ranking.model_copy(update={"enabled": False})}
    )
    weights = dict(EventSettings().weights)
    one, other = (train_pipeline(config, f, weights) for f in (daily, shuffled))
    reports = [p.bundle.manifest["calibration"] for p in (one, other)]
    assert [r["chosen"] for r in reports] == [reports[0]["chosen"]] * 2
    assert reports[0]["tried"] == reports[1]["tried"]  # every score and interval, to the digit
    users = sorted(daily["user_id"].unique().tolist())[:200]
    a, b = one.answer(users, 10), other.answer(users, 10)
    np.testing.assert_array_equal(a.lists.item_ids, b.lists.item_ids)


def test_canonical_order_is_by_time_actor_item_type_value() -> None:
    frame = pd.DataFrame(
        {
            "user_id": ["b", "a", "a", None, "a"],
            "session_id": [None, None, None, "s1", None],
            "item_id": ["x", "y", "x", "x", "x"],
            "event_type": ["view", "view", "view", "view", "cart"],
            "value": [1.0, 1.0, 2.0, 1.0, 1.0],
            "ts": [5, 5, 5, 5, 5],
        }
    )
    got = in_canonical_order(frame)
    # a/x/cart, a/x/view 2.0, a/y, b/x, then the anonymous visitor (session:s1 sorts after)
    assert got[["user_id", "item_id", "event_type"]].values.tolist()[:4] == [
        ["a", "x", "cart"], ["a", "x", "view"], ["a", "y", "view"], ["b", "x", "view"],
    ]  # fmt: skip
    assert got["session_id"].iloc[4] == "s1"
