"""A list popularity answered says so, in a pipeline as in a single model: a known user the
sources propose nothing for is ``tier: popular`` (it had said ``personalised``), one they
propose too few for carries the ``popular_fill`` note; and a list popularity answered whole is
scored with popularity's own score (the users who had the item), not the fill's internal
negative order (-1.001, -1.002, …), in the same order.

Oracle: the checkerboard's two groups (no history in one group reaches the other's items, so
in u000's list every odd item is the fill's, and 15 slots are more than its group has left),
and "loner", whose one item nobody else had: item-kNN has no neighbour for it. Popularity's
score is counted from the events here."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.bundle import POPULAR_FILL, ModelBundle
from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.testing.recommender import group_of, loner_events

K = 15
USERS = ["u000", "loner", "nobody"]


EVENTS = loner_events()
USERS_PER_ITEM = EVENTS.groupby("item_id")["user_id"].nunique()


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 40}]},
            "ranking": {"enabled": False},
            "calibration": {"enabled": False},
        }
    )
    return train_pipeline(config, EVENTS, dict(EventSettings().weights))


@pytest.fixture(scope="module")
def model() -> ModelBundle:
    return ModelBundle.train(
        Interactions.from_events(EVENTS, EventSettings().weights), create("itemknn")
    )


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("served", ["pipeline", "model"])
def test_popularity_answers_are_labelled(
    served: str, batched: bool, request: pytest.FixtureRequest
) -> None:
    answerer = request.getfixturevalue(served)
    if batched:
        answer = answerer.answer(USERS, K)
        tiers, notes, sources = answer.tiers, answer.notes, answer.sources
        items = answer.lists.item_ids
    else:
        alone = [answerer.answer([u], K) for u in USERS]
        tiers = [a.tiers[0] for a in alone]
        notes = [a.notes[0] if a.notes else [] for a in alone]
        sources = [a.sources[0] for a in alone]
        items = [a.lists.item_ids[0] for a in alone]
    assert tiers == ["personalised", "popular", "popular"]
    assert [POPULAR_FILL in n for n in (notes or [[], [], []])] == [True, False, False]
    own = [s != ["popular"] for s in sources[0]]
    assert 0 < sum(own) < K  # the oracle: u000's list is mixed
    assert (group_of(items[0]) == 0).tolist() == own  # the model's are its group's, in front
    assert all(s == ["popular"] for row in sources[1:] for s in row)


@pytest.mark.parametrize("served", ["pipeline", "model"])
def test_whole_popularity_lists_carry_popularitys_own_scores(
    served: str, request: pytest.FixtureRequest
) -> None:
    answer = request.getfixturevalue(served).answer(USERS, K)
    for row, seen in ((1, {"solo"}), (2, set())):
        items = answer.lists.item_ids[row].tolist()
        scores = answer.lists.scores[row]
        assert scores.tolist() == USERS_PER_ITEM[items].astype(float).tolist()
        assert (scores >= 0).all() and (np.diff(scores) <= 0).all()
        # popularity's top K (ties at the cut in any order): its K highest counts
        counts = USERS_PER_ITEM.drop(list(seen)).sort_values(ascending=False)
        assert scores.tolist() == counts.iloc[:K].astype(float).tolist()


def test_mixed_lists_keep_the_fill_below_the_model(pipeline: Pipeline) -> None:
    """A known user's list keeps its order and scores: the fill under the sources' items."""
    answer = pipeline.answer(USERS, K)
    scores = answer.lists.scores[0]
    own = np.asarray([s != ["popular"] for s in answer.sources[0]])
    assert scores[own].min() > scores[~own].max()
    assert (np.diff(scores) <= 0).all()
