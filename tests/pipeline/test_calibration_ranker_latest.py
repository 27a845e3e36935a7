"""``calibration.ranker_latest``: the ranker calibration tries learns from each user's latest
item exactly where the leave-last-out protocol decides (BENCHMARKS §181)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import _ranker_labels, grouped
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.robust_choice import Tried
from recsmith.pipeline.validation import validation_splits


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
