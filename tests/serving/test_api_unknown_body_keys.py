"""A JSON body key the route does not know is named, with the nearest known key, in the shared
422 shape ``{"detail": [{"field", "reason"}]}`` (was pydantic's "Extra inputs are not
permitted", which says neither what was meant nor what is accepted), and in an item batch's
per-record rejections alike. The oracle: each route's documented fields, written out here."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

Headers = dict[str, dict[str, str]]

ITEM_FIELDS = "item_id, categories, tags, text, properties, available, created_at"


@pytest.mark.parametrize(
    ("method", "path", "scope", "body", "error"),
    [
        (
            "PUT",
            "/v1/users/u1",
            "ingest",
            {"propertys": {"country": "fr"}},
            {"field": "propertys", "reason": "unknown field (did you mean properties?)"},
        ),
        (
            "PUT",
            "/v1/users/u1/consent",
            "admin",
            {"personalization": True, "tracking": True, "trackin": False},
            {"field": "trackin", "reason": "unknown field (did you mean tracking?)"},
        ),
        (
            "POST",
            "/v1/admin/keys",
            "admin",
            {"name": "k", "scopes": ["read"], "scope": ["read"]},
            {"field": "scope", "reason": "unknown field (did you mean scopes?)"},
        ),
        (
            "POST",
            "/v1/users/u1/recommendations",
            "read",
            {"rulez": []},
            {"field": "rulez", "reason": "unknown field (did you mean rules?)"},
        ),
        (
            "PUT",
            "/v1/items/i1",
            "ingest",
            {"colour": "red"},
            {"field": "colour", "reason": f"unknown field (valid: {ITEM_FIELDS})"},
        ),
        (
            "PUT",
            "/v1/items/i1",
            "ingest",
            {"tag": ["x"]},
            {"field": "tag", "reason": "unknown field (did you mean tags?)"},
        ),
    ],
)
def test_an_unknown_key_is_named_with_the_key_meant(
    client: TestClient,
    keys: Headers,
    method: str,
    path: str,
    scope: str,
    body: dict[str, Any],
    error: dict[str, str],
) -> None:
    got = client.request(method, path, json=body, headers=keys[scope])
    assert got.status_code == 422, got.text
    assert got.json() == {"detail": [error]}


def test_an_item_batch_rejects_the_record_naming_the_key(client: TestClient, keys: Headers) -> None:
    got = client.post(
        "/v1/items", json=[{"item_id": "i1"}, {"item_id": "i2", "tagz": []}], headers=keys["ingest"]
    )
    assert got.status_code == 200, got.text
    assert got.json()["rejected"] == [
        {"index": 1, "errors": [{"field": "tagz", "reason": "unknown field (did you mean tags?)"}]}
    ]


def test_an_alias_body_with_a_wrong_key_gets_one_reason(client: TestClient, keys: Headers) -> None:
    """An alias body holds a session or a device id: a misspelt key is that key's one error,
    with the key meant (was four: each union member's unknown key and its "required")."""
    got = client.post("/v1/users/u1/aliases", json={"session": "s1"}, headers=keys["ingest"])
    assert got.status_code == 422, got.text
    assert got.json() == {
        "detail": [{"field": "session", "reason": "unknown field (did you mean session_id?)"}]
    }
    got = client.post("/v1/users/u1/aliases", json={"devise_id": "d1"}, headers=keys["ingest"])
    assert got.json() == {
        "detail": [{"field": "devise_id", "reason": "unknown field (did you mean device_id?)"}]
    }


@pytest.mark.parametrize(
    ("body", "got"),
    [({}, "neither"), ({"session_id": "s1", "device_id": "d1"}, "both")],
)
def test_an_alias_body_needs_exactly_one_id(
    client: TestClient, keys: Headers, body: dict[str, str], got: str
) -> None:
    answer = client.post("/v1/users/u1/aliases", json=body, headers=keys["ingest"])
    assert answer.status_code == 422, answer.text
    reason = f"give exactly one of session_id or device_id (got {got})"
    assert answer.json() == {"detail": [{"field": "body", "reason": reason}]}


def test_an_alias_id_of_null_is_refused_as_that_key(client: TestClient, keys: Headers) -> None:
    """The schema says each id is a string: an explicit null is that key's error, not an absent
    key (``{"session_id": null, "device_id": "d1"}`` would otherwise link the device)."""
    body = {"session_id": None, "device_id": "d1"}
    got = client.post("/v1/users/u1/aliases", json=body, headers=keys["ingest"])
    assert got.status_code == 422, got.text
    reason = "must be a string (the alias's id), not null"
    assert got.json() == {"detail": [{"field": "session_id", "reason": reason}]}
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AliasIn"]
    assert schema["properties"]["session_id"]["type"] == "string"
    assert schema["oneOf"] == [{"required": ["session_id"]}, {"required": ["device_id"]}]


@pytest.mark.parametrize("key", ["session_id", "device_id"])
@pytest.mark.parametrize("value", [5, [], {}, True], ids=["int", "list", "object", "bool"])
def test_an_alias_id_not_a_string_gets_one_reason(
    client: TestClient, keys: Headers, key: str, value: object
) -> None:
    """A number, list or object for an id is one reason naming the key (the field's type was a
    union with None, whose members each reported: ``session_id.str`` and ``session_id.none``)."""
    got = client.post("/v1/users/u1/aliases", json={key: value}, headers=keys["ingest"])
    assert got.status_code == 422, got.text
    reason = "must be a string (the alias's id)"
    assert got.json() == {"detail": [{"field": key, "reason": reason}]}
