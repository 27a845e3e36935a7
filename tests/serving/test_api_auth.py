"""API keys: creation, storage of the hash only, scopes per route, revocation, caching."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.errors import ValidationError
from recsmith.serving import create_api_key, create_app
from recsmith.serving.auth import hash_key
from recsmith.store.base import ApiKey
from recsmith.store.sqlite import SQLiteStore

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)

Headers = dict[str, dict[str, str]]
READ_URLS = ("/v1/users/u1/recommendations", "/v1/items/i1/similar", "/v1/popular")


def test_create_api_key_returns_secret_and_stores_only_its_hash(
    store: SQLiteStore, db_path: Path
) -> None:
    key, secret = create_api_key(store, "ci", ["read", "ingest", "read"])
    assert re.fullmatch(rf"rsk_{key.key_id}_[A-Za-z0-9_-]{{32}}", secret)
    assert key.scopes == ("read", "ingest")
    found = store.find_api_key(hash_key(secret))
    assert found is not None and found.key_id == key.key_id and found.name == "ci"
    with sqlite3.connect(db_path) as raw:
        rows = raw.execute("SELECT * FROM api_keys").fetchall()
    assert rows and not any(secret in str(value) for row in rows for value in row)


def test_two_keys_differ(store: SQLiteStore) -> None:
    (a, secret_a), (b, secret_b) = (
        create_api_key(store, "a", ["read"]),
        create_api_key(store, "b", ["read"]),
    )
    assert a.key_id != b.key_id and secret_a != secret_b


@pytest.mark.parametrize(
    ("name", "scopes", "field"),
    [
        ("x", ["read", "superuser"], "scopes"),
        ("x", [], "scopes"),
        ("  ", ["read"], "name"),
    ],
)
def test_create_api_key_refuses_bad_input(
    store: SQLiteStore, name: str, scopes: list[str], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        create_api_key(store, name, scopes)
    assert info.value.field == field


def test_no_key_is_401_with_challenge(client: TestClient, make_event: Any) -> None:
    for response in (
        client.post("/v1/events", json=[make_event()]),
        client.get("/v1/popular"),
        client.put("/v1/items/a", json={}),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_invalid_key_is_401(client: TestClient, keys: Headers) -> None:
    for headers in (
        {"Authorization": "Bearer rsk_nope_nope"},
        {"X-API-Key": "wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        response = client.get("/v1/popular", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_read_key_cannot_ingest(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    response = client.post("/v1/events", json=[make_event()], headers=keys["read"])
    assert response.status_code == 403
    assert "ingest" in response.json()["detail"]
    assert store.count_events() == 0
    assert client.put("/v1/items/a", json={}, headers=keys["read"]).status_code == 403
    for url in READ_URLS:
        assert client.get(url, headers=keys["read"]).status_code == 200


def test_ingest_key_cannot_read(client: TestClient, keys: Headers, make_event: Any) -> None:
    assert client.post("/v1/events", json=[make_event()], headers=keys["ingest"]).status_code == 200
    for url in READ_URLS:
        assert client.get(url, headers=keys["ingest"]).status_code == 403


def test_admin_key_can_do_everything(client: TestClient, keys: Headers, make_event: Any) -> None:
    admin = keys["admin"]
    assert client.post("/v1/events", json=[make_event()], headers=admin).status_code == 200
    assert client.put("/v1/items/a", json={}, headers=admin).status_code == 200
    assert client.post("/v1/items", json=[{"item_id": "b"}], headers=admin).status_code == 200
    for url in READ_URLS:
        assert client.get(url, headers=admin).status_code == 200


def test_x_api_key_header(client: TestClient, store: SQLiteStore) -> None:
    _, secret = create_api_key(store, "header", ["read"])
    assert client.get("/v1/popular", headers={"X-API-Key": secret}).status_code == 200


def test_revoked_key_is_403(client: TestClient, store: SQLiteStore) -> None:
    secret = "rsk_revoked0000_secret"
    key = ApiKey("revoked0000", "old", ("admin",), datetime.now(UTC), revoked=True)
    store.add_api_key(key, hash_key(secret))
    response = client.get("/v1/popular", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 403
    assert "revoked" in response.json()["detail"]


def test_probes_and_metrics_need_no_key(client: TestClient) -> None:
    for url in ("/health/live", "/health/ready", "/metrics", "/openapi.json"):
        assert client.get(url).status_code == 200, url


def test_keys_not_required_for_local_use(
    settings: Settings, bundle: ModelBundle, store: SQLiteStore, make_event: Any
) -> None:
    open_settings = settings.model_copy(
        update={"serving": settings.serving.model_copy(update={"require_keys": False})}
    )
    with TestClient(create_app(open_settings, bundle=bundle, store=store)) as client:
        assert client.post("/v1/events", json=[make_event()]).status_code == 200
        assert client.get("/v1/users/u1/recommendations").status_code == 200


class CountingStore(SQLiteStore):
    """A real store that counts key lookups, to show the in-process cache spares the store."""

    lookups = 0

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        self.lookups += 1
        return super().find_api_key(key_hash)


def test_key_lookups_are_cached(settings: Settings, bundle: ModelBundle, tmp_path: Path) -> None:
    counting = CountingStore(tmp_path / "counting.sqlite")
    _, secret = create_api_key(counting, "cached", ["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        with TestClient(create_app(settings, bundle=bundle, store=counting)) as client:
            for _ in range(5):
                assert client.get("/v1/popular", headers=headers).status_code == 200
            for _ in range(3):
                assert client.get("/v1/popular", headers={"X-API-Key": "bad"}).status_code == 401
    finally:
        counting.close()
    assert counting.lookups == 1 + 3  # the good key once; unknown keys are never cached
