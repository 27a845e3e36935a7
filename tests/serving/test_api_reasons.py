"""Reasons name the anchor item where an item-to-item source proposed the item, and the item
lists (/similar, /together, /popular, /trending) say their source and why."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import sparse

from recsmith.config import Settings
from recsmith.pipeline.anchors import anchor_items
from recsmith.pipeline.runtime import Pipeline
from recsmith.retrieval.candidates import Candidates
from recsmith.serving import create_app
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]


@pytest.fixture
def pipe_client(settings: Settings, pipeline: Pipeline, store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(settings, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client


def test_the_anchor_is_the_recent_item_that_supports_the_item_most() -> None:
    """Hand-made: query 0 viewed items 0 and 1, query 1 nothing, query 2 item 1."""
    matrix = sparse.csr_array(
        np.array([[0, 1, 5, 0], [0, 0, 2, 3], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
    )
    recent = sparse.csr_array(np.array([[1, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]], np.float32))
    query, items = np.array([0, 0, 0, 1, 2, 0]), np.array([2, 3, 0, 2, 2, 1])
    ranks = np.array([[1, 0], [2, 0], [3, 0], [1, 0], [1, 0], [0, 1]], dtype=np.int16)
    final = Candidates(
        3,
        ("knn", "other"),
        query.astype(np.int32),
        items.astype(np.int32),
        np.zeros(6, np.float32),
        np.where(ranks > 0, 1.0, np.nan).astype(np.float32),
        ranks,
    )
    # item 2: 5 (from 0) beats 2 (from 1); item 3 only from 1; item 0 from nobody; query 1 has
    # no recent items; the last row was proposed by a source without a matrix
    assert anchor_items(final, recent, {"knn": matrix}).tolist() == [0, 1, -1, -1, 1, -1]


def test_a_visitors_items_from_item_to_item_sources_name_the_viewed_item(
    pipe_client: TestClient, pipeline: Pipeline, keys: Headers
) -> None:
    viewed = ["i0", "i1"]
    url = f"/v1/users/visitor-7/recommendations?k=20&recent={','.join(viewed)}"
    items = pipe_client.get(url, headers=keys["read"]).json()["items"]
    rows = pipeline.bundle.items.to_index(viewed)
    checked = 0
    for item in items:
        # the first source with an item-to-item matrix (all but trending here) names the anchor
        source = next((s for s in item["sources"] if s in ("knn", "recent", "together")), None)
        if source is None:
            continue
        matrix = pipeline.models[source].item_to_item.toarray()  # type: ignore[union-attr]
        support = matrix[rows, pipeline.bundle.items.to_index([item["item_id"]])[0]]
        if support.max() <= 0:
            assert not item["reason"].startswith("because")
            continue
        assert item["reason"] == f"because you viewed {viewed[int(np.argmax(support))]}"
        checked += 1
    assert checked >= 3


def test_item_lists_carry_a_source_and_a_reason(pipe_client: TestClient, keys: Headers) -> None:
    expected = {
        "/v1/items/i0/similar?k=3": (["similar"], "similar to i0"),
        "/v1/items/i0/together?k=3": (["cooccurrence"], "often together with i0"),
        "/v1/popular?k=3": (["popular"], "popular right now"),
        "/v1/trending?k=3": (["trending"], "trending now"),
    }
    for path, (sources, reason) in expected.items():
        items = pipe_client.get(path, headers=keys["read"]).json()["items"]
        assert items and all(
            (item["sources"], item["reason"]) == (sources, reason) for item in items
        ), path


def test_trending_on_a_single_model_says_it_is_the_popular_list(
    client: TestClient, keys: Headers
) -> None:
    items = client.get("/v1/trending?k=3", headers=keys["read"]).json()["items"]
    assert items and all(i["sources"] == ["popular"] for i in items)
