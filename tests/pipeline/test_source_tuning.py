"""Per-source parameter grids: chosen on a holdout of the training events, applied everywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.source_tuning import latest_ranks, tune_sources
from recsmith.testing.recommender import checkerboard_events, view_events


def _config(tune: dict[str, list[object]]) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "als", "model": "ials", "quota": 30, "tune": tune},
                    {"name": "trending", "model": "trending", "quota": 10},
                ]
            },
            "ranking": {"enabled": False},
        }
    )


def test_the_holdout_is_each_users_latest_item(events: pd.DataFrame) -> None:
    data = Interactions.from_events(events, EventSettings().weights)
    distinct = np.diff(data.matrix.indptr) >= 2
    held = (latest_ranks(data) == 0) & distinct[data.event_users]
    users = data.event_users[held]
    assert len(np.unique(users)) == len(users)  # one per user
    assert set(users.tolist()) == set(np.flatnonzero(np.diff(data.matrix.indptr) >= 2).tolist())
    latest = pd.Series(data.event_ts).groupby(data.event_users).max()
    assert (data.event_ts[held] == latest.loc[users].to_numpy()).all()


def test_the_value_that_ranks_the_holdout_best_is_kept_and_trained(
    events: pd.DataFrame, items: list[Item]
) -> None:
    data = Interactions.from_events(events, EventSettings().weights)
    # a regularisation of a million shrinks every factor to ~0: the list is noise
    config = _config({"regularization": [1e6, 0.05]})
    tuned, report = tune_sources(config, data)
    scores = report["als"]["ndcg@10"]
    assert scores["regularization=0.05"] > 2 * scores["regularization=1000000.0"]
    assert report["als"]["kept"] == "regularization=0.05"
    assert tuned.retrieval.sources[0].params["regularization"] == 0.05
    pipeline = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    assert pipeline.models["als"].config.regularization == 0.05  # the served model has it
    assert pipeline.manifest["source_tuning"]["als"]["kept"] == "regularization=0.05"


def test_untuned_configs_are_left_alone(events: pd.DataFrame) -> None:
    data = Interactions.from_events(events, EventSettings().weights)
    config = _config({})
    assert tune_sources(config, data) == (config, {})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"name": "a", "model": "ials", "tune": {"alpha": []}}, "tune.alpha lists no values"),
        ({"name": "n", "kind": "new_arrivals", "tune": {"x": [1]}}, "new_arrivals takes no tune"),
    ],
)
def test_bad_grids_are_refused(source: dict[str, object], message: str) -> None:
    with pytest.raises((ValidationError, ValueError), match=message):
        PipelineConfig.model_validate({"retrieval": {"sources": [source]}})


@pytest.mark.parametrize(("model", "grid"), [("ease", {"regularization": [10.0, 500.0]})])
def test_tuning_scores_only_what_the_source_can_propose(
    model: str, grid: dict[str, list[object]]
) -> None:
    """Each user's held-out (latest) item lies in the checkerboard's other group, which nothing
    in their past reaches: EASE weighs it exactly 0 (no evidence), and the served source never
    proposes such an item (``with_evidence``). A tuning that scored the raw top-10, zero-weight
    ties in index order included, would count those ties as hits; the oracle is 0 for every
    value."""
    board = checkerboard_events()
    last = board.groupby("user_id")["ts"].max() // 1_000_000  # µs → s
    late = [(u, "i001" if int(u[1:]) % 2 == 0 else "i000", t + 1) for u, t in last.items()]
    events = pd.concat([board, view_events(late)])
    events = events.assign(event_id=[f"e{n}" for n in range(len(events))])
    data = Interactions.from_events(events, EventSettings().weights)
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "m", "model": model, "quota": 30, "tune": grid}]},
            "ranking": {"enabled": False},
        }
    )
    _, report = tune_sources(config, data)
    assert set(report["m"]["ndcg@10"].values()) == {0.0}
