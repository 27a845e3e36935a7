"""A JSON body without a key its route requires says ``required``, naming the key as the client
writes it, as an item's, a user's or an event's record does (was pydantic's "Field required").
The oracle: each route's documented required fields, written out here (the alias body, which
needs one of two keys, is ``test_api_unknown_body_keys``'s)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.base import EventStore

Headers = dict[str, dict[str, str]]


@pytest.mark.parametrize(
    ("method", "path", "scope", "errors"),
    [
        (
            "POST",
            "/v1/admin/keys",
            "admin",
            [{"field": "name", "reason": "required"}, {"field": "scopes", "reason": "required"}],
        ),
        (
            "PUT",
            "/v1/users/u1/consent",
            "admin",
            [
                {"field": "personalization", "reason": "required"},
                {"field": "tracking", "reason": "required"},
            ],
        ),
    ],
)
def test_a_missing_key_is_required_by_its_own_name(
    client: TestClient,
    keys: Headers,
    method: str,
    path: str,
    scope: str,
    errors: list[dict[str, str]],
) -> None:
    got = client.request(method, path, json={}, headers=keys[scope])
    assert got.status_code == 422, got.text
    assert got.json() == {"detail": errors}


def test_a_half_written_body_names_only_the_key_left_out(client: TestClient, keys: Headers) -> None:
    got = client.put("/v1/users/u1/consent", json={"tracking": True}, headers=keys["admin"])
    assert got.status_code == 422, got.text
    assert got.json() == {"detail": [{"field": "personalization", "reason": "required"}]}


def test_a_rule_without_a_key_it_needs_says_required(
    settings: Settings, pipeline: Pipeline, store: EventStore, keys: Headers
) -> None:
    """A request's or a live rule file's rule words a missing key as every body does (was
    pydantic's "Field required" there alone)."""
    boost = {"type": "boost", "equals": "x", "factor": 2.0}
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        got = client.post(
            "/v1/users/u1/recommendations", json={"rules": [boost]}, headers=keys["read"]
        )
        assert got.status_code == 422, got.text
        assert got.json() == {"detail": [{"field": "rules[0].property", "reason": "required"}]}
        got = client.post(
            "/v1/admin/rules/validate", json={"rerank": {"rules": [boost]}}, headers=keys["admin"]
        )
    assert got.status_code == 422, got.text
    assert got.json()["detail"] == [{"field": "rerank.rules[0].property", "reason": "required"}]
