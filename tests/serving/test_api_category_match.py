"""``?category=`` matches the catalogue's names whatever their case; an unknown one is a 422."""

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
from recsmith.serving import create_app
from recsmith.serving.category_match import match_categories
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]
#: Items the session's pipeline knows, filed under "Comedy" (the rest under "Drama").
COMEDIES = {"i0", "i2", "i4", "i6"}


@pytest.fixture(scope="module")
def filed_pipeline(training_records: list[dict[str, Any]]) -> Pipeline:
    """A ranker-less pipeline trained with a catalogue filing i0…i9 under Comedy or Drama."""
    frame, _ = validate_events(training_records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]},
            "ranking": {"enabled": False},
        }
    )
    items = [
        Item(item_id=f"i{n}", categories=["Comedy" if f"i{n}" in COMEDIES else "Drama"])
        for n in range(10)
    ]
    return train_pipeline(config, frame, dict(EventSettings().weights), items=items)


@pytest.fixture
def pipe_client(
    settings: Settings, filed_pipeline: Pipeline, store: SQLiteStore
) -> Iterator[TestClient]:
    app = create_app(settings, bundle=filed_pipeline, store=store)  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize("spelling", ["Comedy", "comedy", "COMEDY", "cOmEdY"])
def test_a_category_matches_in_any_case(
    pipe_client: TestClient, keys: Headers, spelling: str
) -> None:
    url = f"/v1/users/stranger/recommendations?k=10&category={spelling}"
    body = pipe_client.get(url, headers=keys["read"]).json()
    assert body["tier"] == "category"
    assert {item["item_id"] for item in body["items"]} == COMEDIES


def test_a_known_user_gets_only_items_of_the_category(
    pipe_client: TestClient, keys: Headers
) -> None:
    """Items without a category (i10 and up) never pass the filter, popular fills included."""
    dramas = {f"i{n}" for n in range(10)} - COMEDIES
    body = pipe_client.get(
        "/v1/users/u1/recommendations?k=10&category=drama", headers=keys["read"]
    ).json()
    shown = {item["item_id"] for item in body["items"]}
    assert shown and shown <= dramas


def test_an_unknown_category_is_a_422_listing_known_ones(
    pipe_client: TestClient, keys: Headers
) -> None:
    url = "/v1/users/u1/recommendations?k=5&category=comedie"
    response = pipe_client.get(url, headers=keys["read"])
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "category"
    assert "'comedie'" in error["reason"] and "Comedy, Drama" in error["reason"]
    assert "did you mean Comedy" in error["reason"]


def test_names_differing_only_in_case_are_all_matched() -> None:
    known = ("Comedy", "comedy", "Drama")
    assert match_categories(["COMEDY"], known) == ("Comedy", "comedy")
    assert match_categories(["drama", "Drama"], known) == ("Drama",)


def test_a_long_vocabulary_is_listed_in_part() -> None:
    known = tuple(f"c{n:02d}" for n in range(30))
    with pytest.raises(Exception) as caught:
        match_categories(["zzz"], known)
    [error] = caught.value.detail  # type: ignore[attr-defined]
    assert "c00, c01" in error["reason"] and "(20 more)" in error["reason"]
    assert "c10" not in error["reason"]
