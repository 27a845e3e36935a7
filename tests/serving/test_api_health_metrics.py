"""Probes and Prometheus metrics: readiness names the failing check; labels carry no ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]


def test_live_and_ready_with_model(client: TestClient, bundle: ModelBundle) -> None:
    assert client.get("/health/live").json() == {"status": "ok"}
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"store": True, "store_writes": True, "model": True},
        "failed": [],
        "degraded": [],
        "model_version": bundle.version,
        "decisions": {
            "enabled": True,
            "buffered": 0,
            "dropped": 0,
            "written": 0,
            "last_error": None,
        },
    }


def test_ready_is_503_without_model(db_path: Path, store: SQLiteStore) -> None:
    with TestClient(
        create_app(Settings(store={"url": f"sqlite:///{db_path}"}), store=store)
    ) as client:
        assert client.get("/health/live").status_code == 200
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["failed"] == ["model"]
        assert response.json()["status"] == "unavailable"


def test_ready_is_503_when_store_is_down(settings: Settings, bundle: ModelBundle) -> None:
    pytest.importorskip("psycopg")
    from recsmith.store.postgres import PostgresStore

    down = PostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")  # refused
    try:
        with TestClient(create_app(settings, bundle=bundle, store=down)) as client:
            response = client.get("/health/ready")
            assert response.status_code == 503
            assert response.json()["failed"] == ["store", "store_writes"]
            assert response.json()["degraded"] == ["store"]
            assert client.get("/health/live").status_code == 200
    finally:
        down.close()


def test_metrics_use_route_templates_not_ids(
    client: TestClient, bundle: ModelBundle, keys: Headers
) -> None:
    client.get("/v1/users/u7/recommendations", headers=keys["read"])
    client.get("/v1/users/stranger-123/recommendations", headers=keys["read"])
    client.get("/v1/items/i3/similar", headers=keys["read"])
    client.get("/v1/items/unknown-item-xyz/similar", headers=keys["read"])
    client.get("/no/such/path/secret-id-42")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "recsmith_http_request_duration_seconds_bucket",
        "recsmith_http_request_duration_seconds_count",
        "recsmith_events_ingested_total",
        "recsmith_recommendations_total",
        "recsmith_model_info",
    ):
        assert name in text, name
    assert 'route="/v1/users/{user_id}/recommendations"' in text
    assert 'route="/v1/items/{item_id}/similar",status="404"' in text
    assert 'route="<unmatched>",status="404"' in text
    for raw in ("u7", "stranger-123", "unknown-item-xyz", "secret-id-42"):
        assert raw not in text, raw
    assert 'recsmith_recommendations_total{fallback="none"} 1.0' in text
    assert 'recsmith_recommendations_total{fallback="popular"} 1.0' in text
    assert f'recsmith_model_info{{version="{bundle.version}"}} 1.0' in text


def test_each_app_has_its_own_registry(
    settings: Settings, bundle: ModelBundle, store: SQLiteStore, keys: Headers
) -> None:
    with (
        TestClient(create_app(settings, bundle=bundle, store=store)) as first,
        TestClient(create_app(settings, bundle=bundle, store=store)) as second,
    ):
        first.get("/v1/popular", headers=keys["read"])
        assert 'route="/v1/popular"' in first.get("/metrics").text
        assert 'route="/v1/popular"' not in second.get("/metrics").text


def test_openapi_documents_routes_and_event_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/v1/events",
        "/v1/items",
        "/v1/items/{item_id}",
        "/v1/popular",
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
        "/health/live",
        "/health/ready",
        "/metrics",
    } <= set(spec["paths"])
    body: Any = spec["paths"]["/v1/events"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema["type"] == "array"
    event = schema["items"]["anyOf"][0]  # the shape of a good event; the other branch: anything
    assert {"user_id", "item_id", "event_type", "timestamp"} <= set(event["properties"])
    assert "RecommendationResponse" in spec["components"]["schemas"]


def test_routes_that_write_document_the_store_outage_503(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [
        ("/v1/events", "post"),
        ("/v1/items", "post"),
        ("/v1/items/{item_id}", "put"),
        ("/v1/items/{item_id}", "patch"),
    ]:
        assert "503" in paths[path][method]["responses"], (method, path)
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert {"detail", "cause", "error_id"} <= set(schemas["ErrorResponse"]["properties"])
