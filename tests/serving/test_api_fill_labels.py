"""Over HTTP, a known user's list popularity answered says so as the pipeline and the model
do (``tests/pipeline/test_fill_labels.py``): ``tier``/``fallback`` ``popular`` for a list
popularity filled whole, ``degraded: ["popular_fill"]`` for one filled in part, explained or
not; a whole popularity list carries popularity's counts as scores; and the decision log keeps
the fill's items sourced ``popular``. Oracle: the checkerboard's groups and "loner"
(``testing.recommender.loner_events``), counts from the events."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.testing.recommender import group_of, loner_events

Headers = dict[str, dict[str, str]]
EVENTS = loner_events()
USERS_PER_ITEM = EVENTS.groupby("item_id")["user_id"].nunique()


@pytest.fixture(scope="module", params=["pipeline", "model"])
def served(request: pytest.FixtureRequest) -> Pipeline | ModelBundle:
    if request.param == "model":
        data = Interactions.from_events(EVENTS, EventSettings().weights)
        return ModelBundle.train(data, create("itemknn"))
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 40}]},
            "ranking": {"enabled": False},
            "calibration": {"enabled": False},
        }
    )
    return train_pipeline(config, EVENTS, dict(EventSettings().weights))


@pytest.mark.parametrize("explain", [False, True])
def test_labels_scores_and_decisions(
    settings: Settings,
    served: Pipeline | ModelBundle,
    store: EventStore,
    keys: Headers,
    explain: bool,
) -> None:
    url = "/v1/users/{}/recommendations?k=15&explain=" + str(explain).lower()
    with TestClient(create_app(settings, bundle=served, store=store)) as client:
        bodies = {
            u: client.get(url.format(u), headers=keys["admin"]).json()
            for u in ("u000", "loner", "nobody")
        }
    mixed, loner, nobody = bodies["u000"], bodies["loner"], bodies["nobody"]
    assert (mixed["tier"], mixed["fallback"], mixed["degraded"]) == (
        "personalised",
        None,
        ["popular_fill"],
    )
    own = [i for i in mixed["items"] if i["sources"] != ["popular"]]
    assert own and all(group_of([i["item_id"]])[0] == 0 for i in own)
    for body in (loner, nobody):
        assert (body["tier"], body["fallback"], body["degraded"]) == ("popular", "popular", [])
        scores = [i["score"] for i in body["items"]]
        assert scores == [float(USERS_PER_ITEM[i["item_id"]]) for i in body["items"]]
        assert scores == sorted(scores, reverse=True) and min(scores) >= 0
    for body in bodies.values():  # the decision log: the fill's items sourced popular
        decision = store.get_decision(body["recommendation_id"])
        assert decision is not None
        assert list(decision.item_ids) == [i["item_id"] for i in body["items"]]
        assert [list(s) for s in decision.sources] == [i["sources"] for i in body["items"]]
