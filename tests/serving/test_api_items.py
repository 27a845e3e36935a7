"""Catalog writes: PUT one item (path id wins, mismatch refused) and POST a batch."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from recsmith.serving.routers.items import merge_patch
from recsmith.store.sqlite import SQLiteStore

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)

Headers = dict[str, dict[str, str]]


def test_put_without_item_id_uses_the_path(
    client: TestClient, store: SQLiteStore, keys: Headers
) -> None:
    response = client.put(
        "/v1/items/sku-1", json={"categories": ["shoes"], "text": "Runner"}, headers=keys["ingest"]
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    item = store.get_item("sku-1")
    assert item is not None
    assert (item.categories, item.text) == (["shoes"], "Runner")


def test_put_replaces_the_item(client: TestClient, store: SQLiteStore, keys: Headers) -> None:
    client.put("/v1/items/sku-1", json={"item_id": "sku-1", "tags": ["a"]}, headers=keys["ingest"])
    client.put("/v1/items/sku-1", json={"item_id": "sku-1", "tags": ["b"]}, headers=keys["ingest"])
    item = store.get_item("sku-1")
    assert item is not None and item.tags == ["b"]


def test_put_with_a_different_item_id_is_422(
    client: TestClient, store: SQLiteStore, keys: Headers
) -> None:
    response = client.put("/v1/items/sku-1", json={"item_id": "sku-2"}, headers=keys["ingest"])
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "item_id" and "sku-2" in error["reason"]
    assert store.get_item("sku-1") is None and store.get_item("sku-2") is None


def test_put_invalid_item_lists_field_errors(client: TestClient, keys: Headers) -> None:
    response = client.put(
        "/v1/items/sku-1", json={"available": "yes", "colour": "red"}, headers=keys["ingest"]
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert fields == {"available", "colour"}


def test_put_non_object_is_422(client: TestClient, keys: Headers) -> None:
    response = client.put("/v1/items/sku-1", json=["x"], headers=keys["ingest"])
    assert response.status_code == 422


@pytest.mark.parametrize("depth", [900, 5000])  # parsed then refused; too deep to parse
def test_deeply_nested_properties_are_422_not_a_server_error(
    client: TestClient, keys: Headers, depth: int
) -> None:
    body = b'{"properties": {"a": ' + b"[" * depth + b"]" * depth + b"}}"
    headers = {**keys["ingest"], "Content-Type": "application/json"}
    put = client.put("/v1/items/sku-1", content=body, headers=headers)
    post = client.post("/v1/items", content=b"[" + body + b"]", headers=headers)
    assert put.status_code == 422 and post.status_code == (200 if depth == 900 else 422)
    if depth == 900:  # parsed: the field is named, in the batch as one record's rejection
        assert [e["field"] for e in put.json()["detail"]] == ["properties.a"]
        (rejected,) = post.json()["rejected"]
        assert post.json()["accepted"] == 0 and rejected["index"] == 0
        assert "properties.a" in {e["field"] for e in rejected["errors"]}
    else:  # too deep to parse: the whole body is refused, saying why
        for response in (put, post):
            assert response.json()["detail"] == [
                {"field": "request", "reason": "request body is nested too deeply to be a record"}
            ]


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("path", ["/v1/items/x/similar", "/v1/items/shop/sku-9", "/v1/items/a%2Fb"])
def test_a_path_with_a_slash_in_the_id_reaches_no_handler_and_creates_nothing(
    client: TestClient, store: SQLiteStore, keys: Headers, method: str, path: str
) -> None:
    """An id is one path segment: ``PUT /v1/items/x/similar`` once created the item
    ``x/similar``. The encoded one (``a%2Fb``) is the item id's 422, as in a body."""
    response = client.request(method, path, json={}, headers=keys["ingest"])
    assert response.status_code in ((422,) if "%2F" in path else (404, 405)), response.text
    assert store.items() == []


def test_an_id_with_a_slash_in_the_body_is_refused_naming_the_field(
    client: TestClient, store: SQLiteStore, keys: Headers
) -> None:
    response = client.post("/v1/items", json=[{"item_id": "x/similar"}], headers=keys["ingest"])
    assert response.json()["rejected"][0]["errors"] == [
        {"field": "item_id", "reason": "contains '/' (an id is one URL path segment)"}
    ]
    assert store.items() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # raw strings: the JSON escape of a lone surrogate, as a client sends it
        (r'{"categories": ["\ud800"]}', "categories"),
        (r'{"tags": ["ok", "\ud800"]}', "tags"),
        (r'{"text": "a\ud800"}', "text"),
        (r'{"properties": {"k\ud800": 1}}', "properties"),
        (r'{"properties": {"brand": "\ud800"}}', "properties"),
        (r'{"x\ud800": 1}', r"x\ud800"),
    ],
)
def test_text_utf8_cannot_encode_is_refused_by_put_post_and_patch(
    client: TestClient, store: SQLiteStore, keys: Headers, body: str, field: str
) -> None:
    """Such an item was stored with 200, and every later ``train --pipeline`` failed to save."""
    headers = {**keys["ingest"], "Content-Type": "application/json"}
    put = client.put("/v1/items/sku-1", content=body.encode(), headers=headers)
    assert put.status_code == 422 and put.json()["detail"][0]["field"] == field, put.text
    batch = f'[{{"item_id": "ok"}}, {body[:-1]}, "item_id": "sku-2"}}]'
    post = client.post("/v1/items", content=batch.encode(), headers=headers)
    assert post.status_code == 200, post.text
    assert post.json()["accepted"] == 1
    assert [e["field"] for e in post.json()["rejected"][0]["errors"]] == [field]
    assert client.put("/v1/items/sku-1", json=FULL, headers=keys["ingest"]).status_code == 200
    patch = client.patch("/v1/items/sku-1", content=body.encode(), headers=headers)
    assert patch.status_code == 422 and patch.json()["detail"][0]["field"] == field, patch.text
    assert [i.item_id for i in store.items()] == ["ok", "sku-1"]
    item = store.get_item("sku-1")
    assert item is not None and item.properties == FULL["properties"]
    letters = store.dead_letters()
    assert sorted(d.payload["item_id"] for d in letters) == ["sku-1", "sku-1", "sku-2"]
    assert "\\ud800" in json.dumps([d.payload for d in letters], ensure_ascii=False)


def test_post_batch_rejects_by_index(client: TestClient, store: SQLiteStore, keys: Headers) -> None:
    batch = [
        {"item_id": "a"},
        {"text": "no id"},
        {"item_id": "c", "tags": "not-a-list"},
        3,
        {"item_id": "e"},
    ]
    response = client.post("/v1/items", json=batch, headers=keys["ingest"])
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3]
    assert body["rejected"][0]["errors"][0]["field"] == "item_id"
    assert body["rejected"][1]["errors"][0]["field"] == "tags"
    assert [i.item_id for i in store.items()] == ["a", "e"]


def test_post_batch_limits(client: TestClient, keys: Headers) -> None:
    too_many = [{"item_id": f"x{n}"} for n in range(51)]
    assert client.post("/v1/items", json=too_many, headers=keys["ingest"]).status_code == 413
    obj = client.post("/v1/items", json={"item_id": "x"}, headers=keys["ingest"])
    assert obj.status_code == 422


FULL = {
    "categories": ["shoes"],
    "tags": ["running"],
    "text": "Trail runner",
    "properties": {"price": 89.9, "brand": "acme"},
    "created_at": "2026-01-02T03:04:05Z",
}


def test_patch_changes_only_the_fields_it_names(
    client: TestClient, store: SQLiteStore, keys: Headers
) -> None:
    client.put("/v1/items/sku-1", json=FULL, headers=keys["ingest"])
    out_of_stock = client.patch(
        "/v1/items/sku-1", json={"available": False}, headers=keys["ingest"]
    )
    assert out_of_stock.status_code == 200, out_of_stock.text
    item = store.get_item("sku-1")
    assert item is not None and item.available is False
    kept = item.model_dump(mode="json", exclude={"item_id", "available"}, exclude_none=True)
    assert kept == FULL  # a PUT of {"available": false} would have wiped all of this
    # properties merge key by key; null removes one
    repriced = {"properties": {"price": 9.5, "brand": None}, "tags": ["sale"]}
    assert client.patch("/v1/items/sku-1", json=repriced, headers=keys["ingest"]).status_code == 200
    item = store.get_item("sku-1")
    assert item is not None
    assert (item.properties, item.tags, item.categories) == ({"price": 9.5}, ["sale"], ["shoes"])
    assert item.available is False


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/v1/items/nope", {"available": False}, 404, "PUT creates one"),
        ("/v1/items/sku-1", ["x"], 422, "JSON object"),
        ("/v1/items/sku-1", {"item_id": "other"}, 422, "cannot be changed"),
        ("/v1/items/sku-1", {"available": "no"}, 422, "available"),
    ],
)
def test_a_bad_patch_is_refused_and_changes_nothing(
    client: TestClient,
    store: SQLiteStore,
    keys: Headers,
    path: str,
    body: object,
    status: int,
    says: str,
) -> None:
    client.put("/v1/items/sku-1", json=FULL, headers=keys["ingest"])
    response = client.patch(path, json=body, headers=keys["ingest"])
    assert response.status_code == status and says in response.text, response.text
    item = store.get_item("sku-1")
    assert item is not None and item.available and item.properties == FULL["properties"]
    assert store.get_item("nope") is None


def test_merge_patch_follows_rfc_7396() -> None:
    # examples from RFC 7396, appendix A
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({"a": "foo"}, "bar") == "bar"
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}
