"""``score`` means what the README says it means on each route (oracles from the raw events)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]


@pytest.fixture
def pipe_client(settings: Settings, pipeline: Pipeline, store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client


def test_popular_scores_count_the_users_who_interacted(
    pipe_client: TestClient, keys: Headers, training_records: list[dict[str, Any]]
) -> None:
    users: dict[str, set[str]] = {}
    for r in training_records:
        users.setdefault(r["item_id"], set()).add(r["user_id"])
    items = pipe_client.get("/v1/popular?k=10", headers=keys["read"]).json()["items"]
    assert len(items) == 10
    for item in items:
        assert item["score"] == pytest.approx(len(users[item["item_id"]]), abs=1e-4)


def test_in_a_user_list_popularity_fills_sit_below_every_model_item(
    pipe_client: TestClient, keys: Headers
) -> None:
    # a visitor whose one viewed item leads to few candidates: the rest is filled from popularity
    url = "/v1/users/visitor-3/recommendations?k=40&recent=i49"
    items = pipe_client.get(url, headers=keys["read"]).json()["items"]
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    fills = [i["score"] for i in items if i["sources"] == ["popular"]]
    model = [i["score"] for i in items if i["sources"] != ["popular"]]
    assert fills and model
    assert max(fills) <= min(0.0, *model) - 1.0 + 1e-6
