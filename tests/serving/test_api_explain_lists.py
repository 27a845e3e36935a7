"""``?explain=true`` on the item lists (``/similar``, ``/together``, ``/trending``,
``/popular``): each item's rank and score in its one source, the item a neighbour list is about,
and ``availability`` where an unavailable item above it was left out. The oracle is the list
itself, before and after an item is marked unavailable: with every item available an item's
source rank is its slot; with the second item gone, every item below it ranks one past its slot.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving.app import create_app
from recsmith.store.base import EventStore

Headers = dict[str, dict[str, str]]
ANCHOR = "i1"
#: route, its source's name, whether the asked item anchors every item
ROUTES = [
    (f"/v1/items/{ANCHOR}/similar", "similar", True),
    (f"/v1/items/{ANCHOR}/together", "cooccurrence", True),
    ("/v1/trending", "trending", False),
    ("/v1/popular", "popular", False),
]


@pytest.fixture
def list_client(settings: Settings, pipeline: Pipeline, store: EventStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client


def _explained(client: TestClient, keys: Headers, route: str) -> list[dict[str, Any]]:
    response = client.get(f"{route}?k=6&explain=true", headers=keys["admin"])
    assert response.status_code == 200, response.text
    body = response.json()
    items, whys = body["items"], body["explanations"]
    assert len(items) == len(whys) >= 3
    return [{**item, "why": why} for item, why in zip(items, whys, strict=True)]


@pytest.mark.parametrize(("route", "source", "anchored"), ROUTES)
def test_with_every_item_available_an_items_source_rank_is_its_slot(
    list_client: TestClient, keys: Headers, route: str, source: str, anchored: bool
) -> None:
    plain = list_client.get(f"{route}?k=6", headers=keys["admin"])
    assert b"explanation" not in plain.content  # the default answer stays as light
    listed = _explained(list_client, keys, route)
    assert [i["item_id"] for i in listed] == [i["item_id"] for i in plain.json()["items"]]
    for slot, item in enumerate(listed, start=1):
        assert item["why"]["sources"] == [{"name": source, "rank": slot, "score": item["score"]}]
        assert item["why"]["positions"] == {"ranked": slot, "availability": slot}
        assert item["why"]["moved_by"] == [] and item["why"]["ranker"] is None
        anchors = [{"source": source, "item_id": ANCHOR, "weight": item["score"]}]
        assert item["why"]["anchors"] == (anchors if anchored else [])


@pytest.mark.parametrize(("route", "source", "anchored"), ROUTES)
def test_items_below_an_unavailable_one_were_moved_by_availability(
    list_client: TestClient, keys: Headers, route: str, source: str, anchored: bool
) -> None:
    before = _explained(list_client, keys, route)
    gone = before[1]["item_id"]
    put = list_client.put(f"/v1/items/{gone}", json={"available": False}, headers=keys["admin"])
    assert put.status_code == 200, put.text
    after = _explained(list_client, keys, route)
    assert gone not in [i["item_id"] for i in after]
    assert after[0]["item_id"] == before[0]["item_id"]
    assert after[0]["why"]["moved_by"] == []
    was = {i["item_id"]: (slot, i["score"]) for slot, i in enumerate(before, start=1)}
    for slot, item in enumerate(after[1:], start=2):
        assert item["why"]["positions"] == {"ranked": slot + 1, "availability": slot}
        assert item["why"]["moved_by"] == ["availability"]
        assert item["why"]["sources"][0]["rank"] == slot + 1
        if item["item_id"] in was:  # listed before (not the one that came in at the end)
            assert was[item["item_id"]] == (slot + 1, item["score"])


@pytest.mark.parametrize("route", [r for r, _, _ in ROUTES])
def test_explaining_a_list_needs_the_admin_scope(
    list_client: TestClient, keys: Headers, route: str
) -> None:
    refused = list_client.get(f"{route}?explain=true", headers=keys["read"])
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert list_client.get(f"{route}?explain=false", headers=keys["read"]).status_code == 200
