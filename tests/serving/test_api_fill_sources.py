"""A single model's popularity fill is labelled as the fill over HTTP, as a pipeline labels its
own: ``sources: ["popular"]`` and popularity's reason in the list, and under ``?explain=true``
the fill's place and popularity's own score (the users who had the item, counted here from the
events), never the model's name. Oracle: the checkerboard's two groups — no history in one group
reaches the other's items, so every item of the other group in a list is the fill's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.testing.recommender import checkerboard_events, group_of

Headers = dict[str, dict[str, str]]
EVENTS = checkerboard_events()
USERS_PER_ITEM = EVENTS.groupby("item_id")["user_id"].nunique().to_dict()


@pytest.fixture(scope="module", params=["ease", "itemknn"])
def board(request: pytest.FixtureRequest) -> ModelBundle:
    return ModelBundle.train(
        Interactions.from_events(EVENTS, EventSettings().weights), create(request.param)
    )


@pytest.fixture
def board_client(settings: Settings, board: ModelBundle, store: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=board, store=store)) as client:
        yield client


@pytest.mark.parametrize("explain", [False, True])
def test_the_fill_is_labelled_popular_with_popularitys_reason(
    board_client: TestClient, board: ModelBundle, keys: Headers, explain: bool
) -> None:
    url = f"/v1/users/u000/recommendations?k=15&explain={str(explain).lower()}"
    body = board_client.get(url, headers=keys["admin"]).json()
    assert body["tier"] == "personalised"
    items = body["items"]
    other = [i for i in items if group_of([i["item_id"]])[0] != 0]  # u000 is in group 0
    assert other, items  # 15 slots: more than group 0 has left for u000
    for item in other:
        assert item["sources"] == ["popular"] and item["reason"] == "popular right now"
    model = [i for i in items if i["sources"] == [board.model.name]]
    assert model and all(group_of([i["item_id"]])[0] == 0 for i in model)
    assert items == model + [i for i in items if i["sources"] == ["popular"]]  # fills below
    if not explain:
        assert "explanations" not in body or body["explanations"] is None
        return
    whys = body["explanations"]
    for rank, (item, why) in enumerate(zip(items, whys, strict=True), start=1):
        assert why["positions"] == {"ranked": rank}
        if item["sources"] == ["popular"]:
            (say,) = why["sources"]
            assert say == {
                "name": "popular",
                "rank": rank - len(model),
                "score": pytest.approx(USERS_PER_ITEM[item["item_id"]]),
            }
            assert why["anchors"] == []
        else:
            assert why["sources"] == [
                {"name": board.model.name, "rank": rank, "score": item["score"]}
            ]


@pytest.mark.parametrize("explain", [False, True])
def test_similar_lists_only_items_with_evidence(
    board_client: TestClient, keys: Headers, explain: bool
) -> None:
    # the groups share no user, so nothing links i000 to the odd items: EASE weighs them exactly
    # 0 and item-kNN has no neighbour there; neither may call them similar
    url = f"/v1/items/i000/similar?k=30&explain={str(explain).lower()}"
    body = board_client.get(url, headers=keys["admin"]).json()
    items = body["items"]
    assert 0 < len(items) < 15  # at most the 14 other even items
    assert all(group_of([i["item_id"]])[0] == 0 and i["score"] != 0 for i in items)
    if explain:
        assert len(body["explanations"]) == len(items)
