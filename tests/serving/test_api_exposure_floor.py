"""An exposure floor through the HTTP API: its group's items are brought in, and a floor the
catalogue cannot meet is named in the response's ``degraded``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving.app import create_app
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]
SMALL = {"i3", "i7"}  # the only items of the small brand


@pytest.fixture(scope="module")
def floored(training_records: list[dict[str, Any]]) -> Pipeline:
    frame, _ = validate_events(training_records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]},
            "ranking": {"enabled": False},
            "rerank": {
                "exposure": [
                    {
                        "name": "small brands",
                        "property": "brand",
                        "equals": "small",
                        "at_least": 0.3,
                    }
                ]
            },
        }
    )
    items = [
        Item(item_id=f"i{n}", properties={"brand": "small" if f"i{n}" in SMALL else "big"})
        for n in range(10)
    ]
    return train_pipeline(config, frame, dict(EventSettings().weights), items=items)


@pytest.fixture
def floor_client(settings: Settings, floored: Pipeline, store: SQLiteStore) -> Iterator[TestClient]:
    app = create_app(settings, bundle=floored, store=store)  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client


def test_an_unmeetable_floor_is_named_and_its_items_are_shown(
    floor_client: TestClient, keys: Headers
) -> None:
    """k = 10 asks for 3 small-brand items; the catalogue has 2: both are shown, and the
    response says the floor was not met."""
    body = floor_client.get("/v1/users/stranger/recommendations?k=10", headers=keys["read"]).json()
    shown = {item["item_id"] for item in body["items"]}
    assert shown >= SMALL
    assert body["degraded"] == ["exposure:small brands"]


def test_a_met_floor_says_nothing(floor_client: TestClient, keys: Headers) -> None:
    """k = 5 asks for ceil(1.5) = 2: met, so nothing is reported."""
    body = floor_client.get("/v1/users/stranger/recommendations?k=5", headers=keys["read"]).json()
    assert len(SMALL & {item["item_id"] for item in body["items"]}) == 2
    assert body["degraded"] == []
