"""``calibration.ranker_latest``: the ranker calibration tries learns from each user's latest
item exactly where the leave-last-out protocol decides (BENCHMARKS §181)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import _ranker_labels, calibrate, grouped, ranker_estimate
from recsmith.pipeline.config import PipelineConfig, RankingConfig
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.robust_choice import Tried
from recsmith.pipeline.validation import validation_splits
from recsmith.testing.recommender import rating_events


def test_the_ranker_learns_from_latest_items_only_where_that_protocol_decides(
    config: PipelineConfig, events: pd.DataFrame
) -> None:
    data = Interactions.from_events(events, EventSettings().weights)
    groups = grouped(validation_splits(data, 20, 0.2, 10**6))
    protocols = [g[0].protocol for g in groups]
    assert len(groups) == 2 and protocols[1] == "each user's latest item"  # a cut, then latest
    base = Tried("ease", config, tuple(np.zeros(len(g[0].users)) for g in groups))

    def labels(decides: list[bool], on: bool = True, tried: Tried = base) -> str:
        said = [{"decides": d} for d in decides]
        return _ranker_labels(tried, groups, said, on).config.ranking.label_protocol

    assert labels([False, True]) == "latest"
    assert labels([True, True]) == "latest"
    assert labels([True, False]) == "time"  # only the time cut decides
    assert labels([False, False]) == "time"
    assert labels([False, True], on=False) == "time"  # off by default
    both = config.model_copy(
        update={"ranking": config.ranking.model_copy(update={"label_protocol": "both"})}
    )
    assert labels([False, True], tried=Tried("ease", both, base.per_user)) == "both"  # the file's
    assert labels([False, True]) == "latest" and base.config.ranking.label_protocol == "time"


def _new_latest_items(past: Interactions) -> int:
    """Users of ``past`` whose latest event is an item new to them, rated above 0, with two
    distinct items or more: the queries "latest" labels can give (pandas, apart from
    ``training.latest_window``; the simulated shop has no two events of a user at one time)."""
    frame = pd.DataFrame(
        {"u": past.event_users, "i": past.event_items, "t": past.event_ts, "w": past.event_weights}
    ).sort_values("t", kind="stable")
    last = frame.groupby("u").tail(1)
    earlier = frame.drop(last.index)
    seen = set(zip(earlier.u, earlier.i, strict=True))
    distinct = frame[frame.w > 0].groupby("u")["i"].nunique()
    rows = zip(last.u, last.i, last.w, strict=True)
    return sum(w > 0 and (u, i) not in seen and distinct.get(u, 0) >= 2 for u, i, w in rows)


def test_calibration_tries_the_ranker_with_the_labels_it_reports(
    config: PipelineConfig, events: pd.DataFrame
) -> None:
    """Review rv30r L3: with ``ranker_latest`` on the shop's leave-last-out protocol decides, so
    the report says "latest", and the ranker tried must learn from those labels: on the first
    validation past fewer users than ``min_queries`` (200) have a new latest item (counted
    here), so it cannot train (time-cut labels train there: ``test_calibration``'s ranker)."""
    data = Interactions.from_events(events, EventSettings().weights)
    on = PipelineConfig.model_validate(
        {
            **config.model_dump(),
            "calibration": {"enabled": True, "latest_folds": 1, "ranker_latest": True},
        }
    )
    report = calibrate(on, data, ItemAttributes.from_items([], data.items)).report
    assert report["ranker_labels"] == "latest"
    cc = on.calibration
    first = grouped(validation_splits(data, cc.min_users, cc.share, cc.max_users, 0, 1))[0][0]
    assert _new_latest_items(first.past) < on.ranking.min_queries
    assert report["ranker"] == f"not trained on the validation past of {first.protocol} " + (
        "(too_few_queries)"
    )


def test_the_ranker_estimate_scales_with_the_queries_its_labels_give() -> None:
    """Review rv30r L2. 200 users, three items each, then each a new latest item, one event a
    second: the latest tenth of the events (a time cut) holds the latest items of users 120–199,
    80 queries; each user's latest item labels all 200. From 10 CPU s of source fits on one past:
    "time" = 1 window refit + 1 (the examples) = 20 s; "latest" = 1 + 200 / 80 = 35 s; "both" =
    2 windows + 280 / 80 = 55 s (by hand; it counted 20, 20 and 30)."""
    rows = [(f"u{k}", f"i{(k + j) % 13}", 5.0) for k in range(200) for j in (0, 1, 4)]
    rows += [(f"u{k}", f"i{(k + 7) % 13}", 5.0) for k in range(200)]
    past = Interactions.from_events(rating_events(rows), EventSettings().weights)

    def estimate(protocol: str) -> float:
        rc = RankingConfig.model_validate({"label_protocol": protocol, "min_queries": 10})
        return ranker_estimate(rc, [past], 10.0)

    assert estimate("time") == pytest.approx(20.0)
    assert estimate("latest") == pytest.approx(35.0)
    assert estimate("both") == pytest.approx(55.0)
