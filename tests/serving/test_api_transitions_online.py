"""A sequential source (``transitions``) follows what a known user did after training: an event
POSTed to the app moves their list, by the rule in ``models.transitions`` worked out by hand."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

# Each user's views, oldest first. With steps 1 every neighbour pair adds 1 to a rule, each
# item's rules then sum to one: a -> b 1/2, a -> g 1/2 (u1, u5), b -> c 1 (u2, u3), e -> f 1 (u4).
SEQUENCES = {"u1": "ab", "u2": "bc", "u3": "bc", "u4": "ef", "u5": "ag"}


def records() -> list[dict[str, Any]]:
    start = time.time() - 10 * 86_400
    return [
        {
            "event_id": f"train-{user}-{step}",
            "user_id": user,
            "item_id": item,
            "event_type": "view",
            "timestamp": start + 3_600 * (10 * u + step),
        }
        for u, (user, items) in enumerate(SEQUENCES.items())
        for step, item in enumerate(items)
    ]


@pytest.fixture
def seq_client(settings: Settings, store: SQLiteStore) -> Iterator[TestClient]:
    frame, rejected = validate_events(records(), EventSettings())
    assert not rejected
    source = {"name": "seq", "model": "transitions", "quota": 10}
    source["params"] = {"steps": 1, "history": 2}
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": [source]}, "ranking": {"enabled": False}}
    )
    pipeline = train_pipeline(config, frame, dict(EventSettings().weights))
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client


def seq_items(client: TestClient, keys: dict[str, dict[str, str]]) -> list[str]:
    body = client.get("/v1/users/u1/recommendations?k=5", headers=keys["read"]).json()
    return [item["item_id"] for item in body["items"] if "seq" in item["sources"]]


def test_an_event_after_training_leads_a_known_users_transitions(
    seq_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    # u1 (history 2): b (latest) weighs 1, a 1/2: c = 1 · 1, g = 1/2 · 1/2; b, a seen
    assert seq_items(seq_client, keys) == ["c", "g"]
    event = {"event_id": "now-1", "user_id": "u1", "item_id": "e", "event_type": "view"}
    posted = seq_client.post(
        "/v1/events", json=[{**event, "timestamp": time.time() - 5}], headers=keys["ingest"]
    )
    assert posted.status_code < 300, posted.text
    # e is the newest step (1), b moves to step 1 (1/2), a to step 2: past history 2, dropped.
    # f = 1 · 1, c = 1/2 · 1; g had only a behind it
    assert seq_items(seq_client, keys) == ["f", "c"]
