"""Catalogue writes reach the served release at once: an item marked unavailable over the API is
never recommended again, by any route or tier, in this worker, in another one, or in a release
loaded later — without a retrain, for a pipeline and for a single model alike."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.events.schema import Item
from recsmith.ids import IdMap
from recsmith.pipeline.runtime import Pipeline
from recsmith.rerank.catalog_view import ItemTable
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)

URLS = (
    "/v1/users/u1/recommendations?k=20",
    "/v1/users/visitor/recommendations?k=20&recent=i0",  # session tier
    "/v1/users/nobody/recommendations?k=20",  # popular tier
    "/v1/popular?k=20",
    "/v1/trending?k=20",
    "/v1/items/i0/similar?k=20",
    "/v1/items/i0/together?k=20",
)


def served(client: TestClient, headers: dict[str, str]) -> dict[str, set[str]]:
    """Every item each route the deployment answers lists now (a single item-kNN model has no
    co-occurrence list: its /together is a 409 saying how to get one)."""
    out = {}
    for url in URLS:
        response = client.get(url, headers=headers)
        if "together" in url and response.status_code == 409:
            continue
        assert response.status_code == 200, (url, response.text)
        out[url] = {item["item_id"] for item in response.json()["items"]}
    return out


@pytest.fixture(params=["pipeline", "bundle"])
def deployed(request: pytest.FixtureRequest) -> Pipeline | ModelBundle:
    """A pipeline, and a single model (item-kNN), each trained on the shared events."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def client(
    settings: Settings, deployed: Pipeline | ModelBundle, store: SQLiteStore
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=deployed, store=store)) as c:  # type: ignore[arg-type]
        yield c


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_item_marked_unavailable_leaves_every_route_at_once(
    client: TestClient, keys: dict[str, dict[str, str]], method: str
) -> None:
    before = served(client, keys["read"])
    assert len(before) >= 6
    # the item most routes list: the one a shop would notice
    gone = max(
        {i for ids in before.values() for i in ids},
        key=lambda i: sum(i in v for v in before.values()),
    )
    assert sum(gone in ids for ids in before.values()) >= 3
    if method == "patch":  # PATCH changes a stored item: store it first, available
        assert client.put(f"/v1/items/{gone}", json={}, headers=keys["ingest"]).status_code == 200
    change = getattr(client, method)
    marked = change(f"/v1/items/{gone}", json={"available": False}, headers=keys["ingest"])
    assert marked.status_code == 200, marked.text
    after = served(client, keys["read"])
    assert not [url for url, ids in after.items() if gone in ids], gone
    back = change(f"/v1/items/{gone}", json={"available": True}, headers=keys["ingest"])
    assert back.status_code == 200
    assert any(gone in ids for ids in served(client, keys["read"]).values())


def test_another_worker_and_a_later_start_see_the_change(
    settings: Settings,
    deployed: Pipeline | ModelBundle,
    store: SQLiteStore,
    keys: dict[str, dict[str, str]],
) -> None:
    with (
        TestClient(create_app(settings, bundle=deployed, store=store)) as writer,  # type: ignore[arg-type]
        TestClient(create_app(settings, bundle=deployed, store=store)) as other,  # type: ignore[arg-type]
    ):
        top = other.get(URLS[0], headers=keys["read"]).json()["items"][0]["item_id"]
        writer.put(f"/v1/items/{top}", json={"available": False}, headers=keys["ingest"])
        deadline = time.monotonic() + 5  # the other process polls the store every second
        while time.monotonic() < deadline:
            listed = {
                i["item_id"] for i in other.get(URLS[0], headers=keys["read"]).json()["items"]
            }
            if top not in listed:
                break
            time.sleep(0.2)
        assert top not in listed
    # a process started later (or a release loaded later) catches up with writes since training
    with TestClient(create_app(settings, bundle=deployed, store=store)) as later:  # type: ignore[arg-type]
        assert top not in served(later, keys["read"])[URLS[0]]


def test_the_response_cache_never_returns_a_list_from_before_the_change(
    settings: Settings,
    deployed: Pipeline | ModelBundle,
    store: SQLiteStore,
    keys: dict[str, dict[str, str]],
) -> None:
    cached = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"cache_entries": 1000})}
    )
    with TestClient(create_app(cached, bundle=deployed, store=store)) as c:  # type: ignore[arg-type]
        first = c.get(URLS[0], headers=keys["read"]).json()["items"]
        top = first[0]["item_id"]
        assert c.get(URLS[0], headers=keys["read"]).json()["items"] == first  # a cache hit
        c.put(f"/v1/items/{top}", json={"available": False}, headers=keys["ingest"])
        assert top not in {
            i["item_id"] for i in c.get(URLS[0], headers=keys["read"]).json()["items"]
        }


def test_a_price_change_moves_an_item_across_a_price_filter() -> None:
    ids, _ = IdMap.from_values(["a", "b", "c"])
    table = ItemTable.from_items(
        [Item(item_id="a", categories=["x"], properties={"price": 5.0}), Item(item_id="b")], ids
    )
    assert table.numeric("price")[ids.to_index(["a"])][0] == 5.0
    updated = table.with_updates(
        [
            Item(item_id="a", categories=["y"], properties={"price": 50.0}, available=False),
            Item(item_id="c", properties={"price": 1.0}),
            Item(item_id="never-trained", available=False),
        ],
        ids,
    )
    a, b, c = ids.to_index(["a", "b", "c"])
    assert updated.numeric("price")[[a, b, c]].tolist()[0] == 50.0
    assert updated.numeric("price")[c] == 1.0 and updated.known[c]
    assert updated.available.tolist() == [False, True, True]
    assert updated.category_names == table.category_names == ("x",)  # categories: next release
    assert table.available.all() and table.numeric("price")[a] == 5.0  # the old table is intact
