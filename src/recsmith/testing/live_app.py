"""A served pipeline behind FastAPI's test client, for tests that drive the whole request path
(decision log, attribution, bandit state) and then read what it logged. Shared here rather than
imported from one test module into another, which only works when pytest runs from the root."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.decisions.record import Decision
from recsmith.events.schema import Item
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_api_key, create_app
from recsmith.store.open import open_store


def serve(pipeline: Pipeline, url: str) -> tuple[TestClient, dict[str, str]]:
    """A client of an app serving ``pipeline`` over the store at ``url``, and the headers of a
    key with every scope a test needs (read, ingest, admin)."""
    store = open_store(url)
    _, secret = create_api_key(store, "t", ["read", "ingest", "admin"])
    store.close()
    settings = Settings(store={"url": url}, serving={"max_batch": 50})
    return TestClient(create_app(settings, bundle=pipeline)), {"Authorization": f"Bearer {secret}"}


def logged(client: TestClient, rid: str) -> Decision:
    """The decision the app logged for recommendation ``rid``, pending or already written."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    found = runtime.decisions.pending(rid) or runtime.store.get_decision(rid)
    assert found is not None, f"no decision logged for {rid}"
    return found


def two_source_pipeline(
    events: pd.DataFrame, items: list[Item], contextual: dict[str, Any], **more: Any
) -> Pipeline:
    """A pipeline whose lists a bandit chooses between: item-kNN and trending sources, no ranker,
    ``[contextual]`` as given (plus any other top-level tables in ``more``)."""
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 30},
                    {"name": "trending", "model": "trending", "quota": 30},
                ]
            },
            "ranking": {"enabled": False},
            "contextual": contextual,
            **more,
        }
    )
    return train_pipeline(config, events, dict(EventSettings().weights), items=items)


def click_first_items(
    client: TestClient, auth: dict[str, str], clicked: list[tuple[str, Decision]]
) -> None:
    """Each (user, decision)'s first item clicked, attributed explicitly to its list; then the
    bandit state synced at once instead of within its second."""
    clicks = [
        {
            "event_id": f"c-{d.recommendation_id}",
            "user_id": who,
            "item_id": d.item_ids[0],
            "event_type": "click",
            "recommendation_id": d.recommendation_id,
        }
        for who, d in clicked
        if d.item_ids
    ]
    if clicks:
        answered = client.post("/v1/events", json=clicks, headers=auth).json()
        assert len(answered["attributed"]) == len(clicks)
    client.app.state.runtime.contextual.sync()  # type: ignore[attr-defined]
