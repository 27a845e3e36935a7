"""Reasons name items by their catalogue titles ("because you viewed Toy Story (1995)"), falling
back to the id where the catalogue has no title; a title changed through the API is used at
once. (A catalogue without titles: ``test_api_reasons.py`` asserts the ids there.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events, validate_items
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.item_titles import title_of
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.serving.reason_names import ReasonNames
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]

#: How the test catalogue names its items, by id (i3 and up: nothing, or a text too long).
TITLES = {"i0": "Toy Story (1995)", "i1": "Jumanji", "i2": "Heat"}


def catalogue() -> list[Item]:
    """i0 titled by its text (as the MovieLens importer stores titles), i1 by a ``title``
    property over a text, i2 by a ``name`` property, i3 has a description (too long for a
    title), the rest nothing."""
    records: list[dict[str, Any]] = [
        {"item_id": "i0", "text": "Toy Story (1995)"},
        {"item_id": "i1", "text": "a jungle board game", "properties": {"title": "Jumanji"}},
        {"item_id": "i2", "properties": {"name": "Heat"}},
        {"item_id": "i3", "text": "A heist. " * 40},
    ]
    records += [{"item_id": f"i{i}"} for i in range(4, 50)]
    items, rejected = validate_items(records)
    assert not rejected
    return items


@pytest.fixture(scope="module")
def titled(training_records: list[dict[str, Any]]) -> Pipeline:
    frame, _ = validate_events(training_records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 30},
                    {"name": "recent", "model": "itemknn", "use": "recent", "quota": 10},
                    {
                        "name": "together",
                        "model": "cooccurrence",
                        "quota": 10,
                        "params": {"min_support": 1},
                    },
                ]
            },
            "ranking": {"enabled": False},
        }
    )
    return train_pipeline(config, frame, dict(EventSettings().weights), items=catalogue())


@pytest.fixture
def titled_client(settings: Settings, titled: Pipeline, store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=titled, store=store)) as c:  # type: ignore[arg-type]
        yield c


def test_a_title_is_the_title_property_then_name_then_a_short_text() -> None:
    assert {it.item_id: title_of(it) for it in catalogue()[:5]} == {
        **TITLES,
        "i3": None,
        "i4": None,
    }


def named(item_id: str) -> str:
    return TITLES.get(item_id, item_id)


def anchor_of(pipe: Pipeline, viewed: list[str]) -> Callable[[dict[str, Any]], str | None]:
    """The expected anchor of a listed item: the viewed item its first item-to-item source's
    matrix supports it most from (independently of ``pipeline.anchors``), or None."""
    rows = pipe.bundle.items.to_index(viewed)

    def expected(item: dict[str, Any]) -> str | None:
        source = next((s for s in item["sources"] if s in ("knn", "recent", "together")), None)
        if source is None:
            return None
        matrix = pipe.models[source].item_to_item.toarray()  # type: ignore[union-attr]
        support = matrix[rows, pipe.bundle.items.to_index([item["item_id"]])[0]]
        return viewed[int(np.argmax(support))] if support.max() > 0 else None

    return expected


def test_reasons_name_the_anchor_by_title_or_id(
    titled_client: TestClient, titled: Pipeline, keys: Headers
) -> None:
    viewed = ["i0", "i1", "i5"]
    url = f"/v1/users/visitor-9/recommendations?k=30&recent={','.join(viewed)}"
    items = titled_client.get(url, headers=keys["read"]).json()["items"]
    expected = anchor_of(titled, viewed)
    anchors = {expected(item) for item in items} - {None}
    assert {"i0", "i5"} <= anchors  # a titled anchor and an untitled one are both exercised
    for item in items:
        anchor = expected(item)
        if anchor is not None:
            assert item["reason"] == f"because you viewed {named(anchor)}", item


def test_similar_and_together_name_the_item_by_title(
    titled_client: TestClient, keys: Headers
) -> None:
    for item_id in ("i0", "i2", "i7"):
        similar = titled_client.get(f"/v1/items/{item_id}/similar?k=3", headers=keys["read"])
        together = titled_client.get(f"/v1/items/{item_id}/together?k=3", headers=keys["read"])
        assert {i["reason"] for i in similar.json()["items"]} == {f"similar to {named(item_id)}"}
        assert {i["reason"] for i in together.json()["items"]} == {
            f"often together with {named(item_id)}"
        }


def test_a_title_changed_through_the_api_is_used_at_once(
    titled_client: TestClient, keys: Headers
) -> None:
    put = titled_client.put(
        "/v1/items/i7", json={"properties": {"title": "Casino"}}, headers=keys["ingest"]
    )
    assert put.status_code == 200
    similar = titled_client.get("/v1/items/i7/similar?k=3", headers=keys["read"]).json()
    assert {i["reason"] for i in similar["items"]} == {"similar to Casino"}


def test_a_single_model_names_items_by_id(client: TestClient, keys: Headers) -> None:
    similar = client.get("/v1/items/i0/similar?k=3", headers=keys["read"]).json()
    assert {i["reason"] for i in similar["items"]} == {"similar to i0"}


def test_a_name_served_before_a_title_change_is_not_served_after_it(
    titled_client: TestClient, keys: Headers
) -> None:
    url = "/v1/items/i8/similar?k=3"
    before = titled_client.get(url, headers=keys["read"]).json()
    assert {i["reason"] for i in before["items"]} == {"similar to i8"}
    put = titled_client.put(
        "/v1/items/i8", json={"properties": {"name": "Ronin"}}, headers=keys["ingest"]
    )
    assert put.status_code == 200
    after = titled_client.get(url, headers=keys["read"]).json()
    assert {i["reason"] for i in after["items"]} == {"similar to Ronin"}


def test_remembered_names_follow_the_titles_each_pipeline_serves(titled: Pipeline) -> None:
    names = ReasonNames()
    ids = ["i0", None, "i5", "i0", "i2", "not-an-item"]
    expected = ["Toy Story (1995)", None, "i5", "Toy Story (1995)", "Heat", "not-an-item"]
    assert names.named(titled, ids) == expected
    assert names.named(titled, ids) == expected  # from what it kept
    records, rejected = validate_items([{"item_id": "i0", "properties": {"title": "Toy Story 2"}}])
    assert not rejected
    changed = titled.with_catalog(records, stamp=1)
    assert names.named(changed, ids)[:4] == ["Toy Story 2", None, "i5", "Toy Story 2"]
    assert names.named(titled, ids) == expected  # the release it replaced, still answering


def test_a_pipeline_calls_lists_are_named_in_one_search(
    titled: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[list[str]] = []
    search = Pipeline.display_names

    def counted(self: Pipeline, item_ids: list[str]) -> list[str]:
        searched.append(list(item_ids))
        return search(self, item_ids)

    monkeypatch.setattr(Pipeline, "display_names", counted)
    names = ReasonNames()
    batch = [["i0", None, "i5"], ["i2", "i0"], [None, None], ["not-an-item", "i1"]]
    expected = [
        ["Toy Story (1995)", None, "i5"],
        ["Heat", "Toy Story (1995)"],
        [None, None],
        ["not-an-item", "Jumanji"],
    ]
    # the lists named in another order than the call's, as their requests resume
    assert [names.named(titled, batch[r], batch) for r in (3, 0, 2, 1)] == [
        expected[r] for r in (3, 0, 2, 1)
    ]
    assert len(searched) == 1
    assert sorted(searched[0]) == ["i0", "i1", "i2", "i5", "not-an-item"]
    later = [["i3", "i0"], ["i4"]]  # the next call: only its names not kept are searched
    assert names.named(titled, later[1], later) == ["i4"]
    assert names.named(titled, later[0], later) == ["i3", "Toy Story (1995)"]
    assert searched[1:] == [["i4", "i3"]]
    # a list outside the batch it names with is still named in full
    assert names.named(titled, ["i2", "i6"], later) == ["Heat", "i6"]
