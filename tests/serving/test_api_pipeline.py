"""Serving a pipeline: tiers, sources and reasons per item, request options, together, trending."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.serving.routers.recommend import reason_for
from recsmith.store.sqlite import SQLiteStore


@pytest.fixture
def pipe_client(settings: Settings, pipeline: Pipeline, store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client


def test_known_user_gets_personalised_items_with_sources_and_reasons(
    pipe_client: TestClient,
    keys: dict[str, dict[str, str]],
    training_records: list[dict[str, Any]],
) -> None:
    body = pipe_client.get("/v1/users/u1/recommendations?k=5", headers=keys["read"]).json()
    assert body["tier"] == "personalised" and body["fallback"] is None
    assert len(body["items"]) == 5
    configured = {"knn", "recent", "together", "trending", "popular"}  # conftest's, + fallback
    viewed = {r["item_id"] for r in training_records if r["user_id"] == "u1"}
    for item in body["items"]:
        assert item["sources"] and set(item["sources"]) <= configured
        anchor = item["reason"].removeprefix("because you viewed ")
        if anchor != item["reason"]:  # named by an item-to-item source, after an item u1 saw
            assert "recent" in item["sources"] and anchor in viewed
            assert item["reason"] == reason_for(item["sources"], anchor=anchor)
        else:
            assert item["reason"] == reason_for(item["sources"])


def test_anonymous_visitor_is_answered_from_the_session(
    pipe_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    url = "/v1/users/visitor-9/recommendations?k=5&recent=i0,i1&device=mobile&hour=9"
    body = pipe_client.get(url, headers=keys["read"]).json()
    assert body["tier"] == "session" and body["fallback"] == "session"
    assert not {"i0", "i1"} & {item["item_id"] for item in body["items"]}
    stranger = pipe_client.get("/v1/users/nobody/recommendations?k=5", headers=keys["read"])
    assert stranger.json()["tier"] == "popular"


def test_exclude_parameter_is_honoured(
    pipe_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    first = pipe_client.get("/v1/users/u2/recommendations?k=4", headers=keys["read"]).json()
    top = first["items"][0]["item_id"]
    again = pipe_client.get(
        f"/v1/users/u2/recommendations?k=4&exclude={top}", headers=keys["read"]
    ).json()
    assert top not in {item["item_id"] for item in again["items"]}


def test_together_and_trending(
    pipe_client: TestClient,
    keys: dict[str, dict[str, str]],
    training_records: list[dict[str, Any]],
) -> None:
    together = pipe_client.get("/v1/items/i0/together?k=3", headers=keys["read"])
    assert together.status_code == 200
    assert "i0" not in {item["item_id"] for item in together.json()["items"]}
    trending = pipe_client.get("/v1/trending?k=3", headers=keys["read"])
    assert trending.status_code == 200 and len(trending.json()["items"]) == 3
    # hand counts from the training events: baskets are a user's UTC day (no sessions here)
    frame = pd.DataFrame(training_records)
    frame["basket"] = frame["user_id"] + "/" + (frame["timestamp"] // 86_400).astype(str)
    pairs = frame[["basket", "item_id"]].drop_duplicates()
    with_i0 = pairs[pairs["basket"].isin(pairs.loc[pairs["item_id"] == "i0", "basket"])]
    confidence = with_i0["item_id"].value_counts().drop("i0") / (pairs["item_id"] == "i0").sum()
    listed = [(item["item_id"], item["score"]) for item in together.json()["items"]]
    assert [score for _, score in listed] == pytest.approx(confidence[[i for i, _ in listed]])
    assert [score for _, score in listed] == pytest.approx(confidence.nlargest(3).tolist())
    # trending: events weighed 0.5 ** (days before the newest event / 7)
    age_days = (frame["timestamp"].max() - frame["timestamp"]) / 86_400
    decayed = (0.5 ** (age_days / 7)).groupby(frame["item_id"]).sum()
    top = [(item["item_id"], item["score"]) for item in trending.json()["items"]]
    assert [score for _, score in top] == pytest.approx(decayed[[i for i, _ in top]], rel=1e-5)
    assert [score for _, score in top] == pytest.approx(decayed.nlargest(3).tolist(), rel=1e-5)


def test_together_without_a_cooccurrence_model_is_409_saying_how_to_enable_it(
    client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    response = client.get("/v1/items/i0/together?k=3", headers=keys["read"])
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "itemknn" in detail and "--model cooccurrence" in detail


def test_together_on_a_pipeline_without_the_source_says_what_to_add(
    settings: Settings,
    small_pipeline: Callable[[list[dict[str, Any]]], Pipeline],
    store: SQLiteStore,
    keys: dict[str, dict[str, str]],
) -> None:
    pipeline = small_pipeline([{"name": "knn", "model": "itemknn", "quota": 30}])
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        response = client.get("/v1/items/i0/together?k=3", headers=keys["read"])
    assert response.status_code == 409
    assert 'model = "cooccurrence"' in response.json()["detail"]


def test_metrics_report_stages_and_sources(
    pipe_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    pipe_client.get("/v1/users/u1/recommendations?k=5", headers=keys["read"])
    text = pipe_client.get("/metrics").text
    for stage in ("retrieval", "ranking", "rerank"):
        assert f'recsmith_pipeline_stage_duration_seconds_count{{stage="{stage}"}} 1.0' in text
    assert 'recsmith_pipeline_items_total{source="knn"}' in text


@pytest.mark.parametrize(
    ("option", "named"), [("diversity=0.5", "diversity"), ("category=shoes", "categories")]
)
def test_single_model_refuses_pipeline_options_with_a_reason(
    client: TestClient, keys: dict[str, dict[str, str]], option: str, named: str
) -> None:
    """README: for pipeline deployments only (a single model answers 409, naming what it lacks)."""
    response = client.get(f"/v1/users/u1/recommendations?k=3&{option}", headers=keys["read"])
    assert response.status_code == 409 and "pipeline" in response.json()["detail"]
    assert named in response.json()["detail"]


def test_a_category_filter_on_a_catalogue_without_categories_is_a_422(
    pipe_client: TestClient, keys: dict[str, dict[str, str]]
) -> None:
    """This deployment has no catalogue, so no category can match: the request is refused
    rather than answered with an empty list (``test_api_category_match`` has the filter)."""
    response = pipe_client.get(
        "/v1/users/u1/recommendations?k=5&category=shoes", headers=keys["read"]
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"field": "category", "reason": "unknown category 'shoes': the catalogue has no categories"}
    ]


def test_reasons_of_the_category_tier() -> None:
    assert reason_for(["category_popular"], ("shoes",)) == "popular in shoes"
    assert reason_for(["category_popular"], ("shoes", "hats")) == "popular in these categories"


def test_a_category_tier_item_keeps_its_category_reason_even_with_an_anchor() -> None:
    """The request asked for the category: that it is popular there says more than the recent
    item an item-to-item source also proposed it from; without the tier the anchor wins."""
    both = ["category_popular", "item_knn"]
    assert reason_for(both, ("shoes",), anchor="X") == "popular in shoes"
    assert reason_for(["item_knn"], ("shoes",), anchor="X") == "because you viewed X"
