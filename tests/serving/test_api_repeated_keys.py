"""A JSON object that repeats a key is ambiguous: its record is rejected naming the key (and its
index in a batch), and valid neighbours are stored. Bodies are written out by hand, since a
dict cannot hold a repeated key."""

from __future__ import annotations

import json
import time

from fastapi.testclient import TestClient

from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]
JSON = {"Content-Type": "application/json"}


def _event(item: str, extra: str = "") -> str:
    return (
        f'{{"event_id": "rk-{item}", "user_id": "u1", "item_id": "{item}", '
        f'"event_type": "view", "timestamp": {time.time() - 60}{extra}}}'
    )


def test_a_batch_record_with_a_repeated_key_is_rejected_at_its_index(
    client: TestClient, store: SQLiteStore, keys: Headers
) -> None:
    records = [
        _event("ok-0"),
        _event("first", ', "item_id": "second"'),
        _event("ok-2"),
        _event("nested", ', "context": {"page": "home", "page": "cart"}'),
    ]
    body = f"[{', '.join(records)}]".encode()
    response = client.post("/v1/events", content=body, headers={**keys["ingest"], **JSON})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 2
    rejected = {r["index"]: [e["field"] for e in r["errors"]] for r in result["rejected"]}
    assert rejected == {1: ["item_id"], 3: ["context.page"]}
    assert all("repeated key" in e["reason"] for r in result["rejected"] for e in r["errors"])
    assert sorted(store.user_items("u1")) == ["ok-0", "ok-2"]
    assert [d.record_index for d in store.dead_letters()] == [1, 3]


def test_a_repeated_key_in_an_item_batch_is_rejected_at_its_index(
    client: TestClient, store: SQLiteStore, keys: Headers
) -> None:
    body = b'[{"item_id": "a"}, {"item_id": "b", "tags": [{"x": 1, "x": 2}]}]'
    response = client.post("/v1/items", content=body, headers={**keys["ingest"], **JSON})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    [rejection] = response.json()["rejected"]
    assert rejection["index"] == 1
    assert [e["field"] for e in rejection["errors"]] == ["tags[0].x"]
    assert store.get_item("a") is not None and store.get_item("b") is None


def test_put_and_patch_with_a_repeated_key_are_422_naming_it(
    client: TestClient, store: SQLiteStore, keys: Headers
) -> None:
    headers = {**keys["ingest"], **JSON}
    put = client.put(
        "/v1/items/sku-1",
        content=b'{"properties": {"price": 1, "price": 2}, "available": true}',
        headers=headers,
    )
    assert put.status_code == 422
    assert [d["field"] for d in put.json()["detail"]] == ["properties.price"]
    assert store.get_item("sku-1") is None
    created = client.put("/v1/items/sku-1", content=b'{"available": true}', headers=headers)
    assert created.status_code == 200, created.text
    patch = client.patch(
        "/v1/items/sku-1", content=b'{"available": false, "available": true}', headers=headers
    )
    assert patch.status_code == 422
    assert [d["field"] for d in patch.json()["detail"]] == ["available"]
    stored = store.get_item("sku-1")
    assert stored is not None and stored.available is True


def test_the_same_key_in_different_objects_is_not_a_repeat(
    client: TestClient, keys: Headers
) -> None:
    body = json.dumps({"properties": {"item_id": "x"}, "available": True}).encode()
    response = client.put("/v1/items/sku-2", content=body, headers={**keys["ingest"], **JSON})
    assert response.status_code == 200, response.text
