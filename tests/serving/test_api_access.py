"""Per-key rate limits (429 with Retry-After) and who may read /metrics and the docs, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app
from recsmith.serving.auth import hash_key
from recsmith.store.base import ApiKey, EventStore

STORES = ("sqlite", "postgres")
EXPOSED = ("/metrics", "/openapi.json", "/docs", "/redoc")


def app_with(
    settings: Settings, bundle: ModelBundle, store: EventStore, **changes: dict
) -> TestClient:
    """A client of an app whose settings differ from the fixture's by ``changes`` per section."""
    updated = settings.model_copy(
        update={
            name: getattr(settings, name).model_copy(update=values)
            for name, values in changes.items()
        }
    )
    return TestClient(create_app(updated, bundle=bundle, store=store))


def test_a_key_past_its_read_rate_gets_429_with_retry_after(
    settings: Settings, bundle: ModelBundle, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    with app_with(settings, bundle, store, auth={"rate_limits": {"read": "3/min"}}) as client:
        statuses = [client.get("/v1/popular", headers=keys["read"]).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        over = client.get("/v1/popular", headers=keys["read"])
        assert over.status_code == 429
        # empty bucket, 3 tokens a minute: the next one in 20 s
        assert over.headers["Retry-After"] == "20"
        assert "over its read rate of 3 per 60 s" in over.json()["detail"]
        # the admin key has a bucket of its own; ingest has no limit
        assert client.get("/v1/popular", headers=keys["admin"]).status_code == 200
        for _ in range(10):
            assert client.post("/v1/events", json=[], headers=keys["ingest"]).status_code == 200


def test_no_limit_without_configuration(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    assert {client.get("/v1/popular", headers=keys["read"]).status_code for _ in range(50)} == {200}


@pytest.fixture
def revoked_and_expired(store: EventStore) -> Iterator[list[dict[str, str]]]:
    now = datetime.now(UTC)
    revoked = ApiKey("revoked0001", "gone", ("admin",), now, revoked=True, revoked_at=now)
    expired = ApiKey("expired0001", "old", ("admin",), now, expires_at=now)
    store.add_api_key(revoked, hash_key("rsk_revoked0001_x"))
    store.add_api_key(expired, hash_key("rsk_expired0001_x"))
    yield [{"X-API-Key": "rsk_revoked0001_x"}, {"X-API-Key": "rsk_expired0001_x"}]


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.7"])
def test_outside_localhost_metrics_and_docs_need_a_key_by_default(
    settings: Settings,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    revoked_and_expired: list[dict[str, str]],
    host: str,
) -> None:
    with app_with(settings, bundle, store, serving={"host": host}) as client:
        for url in EXPOSED:
            assert client.get(url).status_code == 401, url
            assert client.get(url, headers={"X-API-Key": "rsk_bogus"}).status_code == 401, url
            for scope in ("ingest", "read", "admin"):  # any valid key will do
                assert client.get(url, headers=keys[scope]).status_code == 200, (url, scope)
            for dead in revoked_and_expired:
                assert client.get(url, headers=dead).status_code == 403, url
        schema = client.get("/openapi.json", headers=keys["read"]).json()
        assert "/v1/events" in schema["paths"]
        assert "recsmith_model_info" in client.get("/metrics", headers=keys["read"]).text


def test_on_localhost_they_are_open_and_each_choice_can_be_forced(
    settings: Settings, bundle: ModelBundle, store: EventStore, keys: dict[str, dict[str, str]]
) -> None:
    with TestClient(create_app(settings, bundle=bundle, store=store)) as client:  # 127.0.0.1
        assert {client.get(url).status_code for url in EXPOSED} == {200}
    off = {"expose_metrics": "off", "expose_docs": "off"}
    with app_with(settings, bundle, store, auth=off) as client:
        for url in EXPOSED:
            assert client.get(url, headers=keys["admin"]).status_code == 404, url
        assert client.get("/health/ready").status_code == 200
        assert client.get("/v1/popular", headers=keys["read"]).status_code == 200
    split = {"expose_metrics": "key", "expose_docs": "open"}
    with app_with(settings, bundle, store, serving={"host": "0.0.0.0"}, auth=split) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/openapi.json").status_code == 200
    with app_with(
        settings, bundle, store, serving={"host": "0.0.0.0", "require_keys": False}
    ) as client:  # no keys at all: nothing to ask for
        assert client.get("/metrics").status_code == 200
