"""Keeping seen items (per request and per pipeline), and a pipeline's version naming it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)

Headers = dict[str, dict[str, str]]
N_ITEMS = 50  # conftest's catalogue: k = N_ITEMS asks for every item there is


def _trained(records: list[dict[str, Any]], include_seen: bool | None) -> Pipeline:
    frame, _ = validate_events(records, EventSettings())
    retrieval: dict[str, Any] = {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]}
    if include_seen is not None:
        retrieval["include_seen"] = include_seen
    config = PipelineConfig.model_validate({"retrieval": retrieval, "ranking": {"enabled": False}})
    return train_pipeline(config, frame, dict(EventSettings().weights))


@pytest.fixture(scope="module", params=[None, True], ids=["default", "keeps-seen"])
def seen_pipeline(request: pytest.FixtureRequest, training_records: list[dict[str, Any]]) -> Any:
    return _trained(training_records, request.param)


@pytest.fixture
def pipe_client(
    settings: Settings, seen_pipeline: Pipeline, store: SQLiteStore
) -> Iterator[TestClient]:
    app = create_app(settings, bundle=seen_pipeline, store=store)  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client


def _had(records: list[dict[str, Any]], user: str) -> set[str]:
    return {r["item_id"] for r in records if r["user_id"] == user}


def _listed(client: TestClient, keys: Headers, query: str) -> set[str]:
    url = f"/v1/users/u1/recommendations?k={N_ITEMS}{query}"
    response = client.get(url, headers=keys["read"])
    assert response.status_code == 200, response.text
    return {item["item_id"] for item in response.json()["items"]}


def test_include_seen_keeps_trained_and_stored_items_per_request(
    pipe_client: TestClient,
    seen_pipeline: Pipeline,
    keys: Headers,
    training_records: list[dict[str, Any]],
    make_event: Any,
) -> None:
    had = _had(training_records, "u1")
    bought_since = next(f"i{n}" for n in range(N_ITEMS) if f"i{n}" not in had)
    event = make_event(user_id="u1", item_id=bought_since, event_type="purchase")
    assert pipe_client.post("/v1/events", json=[event], headers=keys["ingest"]).json()["accepted"]
    owned = had | {bought_since}
    kept = _listed(pipe_client, keys, "&include_seen=true")
    assert owned <= kept
    assert not owned & _listed(pipe_client, keys, "&include_seen=false")
    # the pipeline's own setting when the request says nothing
    default = _listed(pipe_client, keys, "")
    if seen_pipeline.config.retrieval.include_seen:
        assert owned <= default
    else:
        assert not owned & default


def test_include_seen_still_honours_exclude(
    pipe_client: TestClient, keys: Headers, training_records: list[dict[str, Any]]
) -> None:
    dropped = sorted(_had(training_records, "u1"))[0]
    assert dropped not in _listed(pipe_client, keys, f"&include_seen=true&exclude={dropped}")


def test_a_single_model_refuses_include_seen_with_409(client: TestClient, keys: Headers) -> None:
    response = client.get("/v1/users/u1/recommendations?include_seen=true", headers=keys["read"])
    assert response.status_code == 409 and "include_seen" in response.json()["detail"]


def test_a_pipeline_version_names_a_pipeline(pipe_client: TestClient, keys: Headers) -> None:
    manifest = pipe_client.app.state.runtime.bundle.manifest  # type: ignore[attr-defined]
    created = datetime.fromisoformat(manifest["created_at"])
    expected = f"pipeline-{created:%Y%m%d%H%M%S}-{manifest['data_fingerprint'][:6]}"
    for path in ("/v1/popular", "/v1/users/u1/recommendations"):
        assert pipe_client.get(path, headers=keys["read"]).json()["model_version"] == expected
