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


def test_a_union_body_names_the_key_each_member_meant(client: TestClient, keys: Headers) -> None:
    """An alias body is a session or a device alias: each member's own fields are suggested,
    under the key the client wrote (not pydantic's ``SessionAlias.session``)."""
    got = client.post("/v1/users/u1/aliases", json={"session": "s1"}, headers=keys["ingest"])
    assert got.status_code == 422, got.text
    assert {"field": "session", "reason": "unknown field (did you mean session_id?)"} in (
        got.json()["detail"]
    )
    assert {"field": "session", "reason": "unknown field (valid: device_id)"} in (
        got.json()["detail"]
    )
    assert not any("Alias" in e["field"] for e in got.json()["detail"])
