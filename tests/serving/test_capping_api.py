"""Frequency capping and page views on the recommendations route, over the real store.

The oracle is the model's own ranking for the user (``ModelBundle.recommend``, nothing excluded:
the store holds no events for them), cut by hand: with ``max_shows = 2`` the first two lists are
its top 5, the third skips those 5 and so on. Two apps over one store file stand for two server
processes (two workers, each with its own decision log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.events.validate import validate_events
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.open import open_store

STORES = ("sqlite", "postgres")


def _settings(store_url: str, bundle_dir: Path, **capping: Any) -> Settings:
    return Settings(
        store={"url": store_url},
        serving={"model_dir": bundle_dir},
        decisions={"flush_interval_s": 1.0},
        capping=capping,
    )


@pytest.fixture
def top(bundle: ModelBundle) -> list[str]:
    """u1's ranking as the model gives it, 20 deep."""
    return [str(i) for i in bundle.recommend(["u1"], 20).item_ids[0]]


def _ask(client: TestClient, headers: dict[str, str], query: str) -> dict[str, Any]:
    response = client.get(f"/v1/users/u1/recommendations?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _items(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


def test_drop_leaves_out_an_item_shown_max_shows_times_across_placements(
    store_url: str,
    bundle_dir: Path,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    top: list[str],
) -> None:
    settings = _settings(store_url, bundle_dir, enabled=True, max_shows=2, action="drop")
    with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
        read = keys["read"]
        shown = [
            _ask(client, read, f"k=5&placement={p}")
            for p in ("home", "product_page", "cart", "home", "email")
        ]
    # shows per item: top[:5] 1, 2, (capped) ...; top[5:10] 1, 2; then top[10:15]
    assert [_items(b) for b in shown] == [top[:5], top[:5], top[5:10], top[5:10], top[10:15]]
    assert [b["capped"] for b in shown] == [0, 0, 5, 5, 10]
    assert all(b["page_view_excluded"] == 0 for b in shown)


def test_demote_moves_capped_items_below_the_others(
    store_url: str,
    bundle_dir: Path,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    top: list[str],
) -> None:
    settings = _settings(store_url, bundle_dir, enabled=True, max_shows=1, action="demote")
    with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
        first = _ask(client, keys["read"], "k=3&placement=home")
        second = _ask(client, keys["read"], "k=5&placement=cart")
    assert _items(first) == top[:3] and first["capped"] == 0
    assert _items(second) == [top[3], top[4], top[0], top[1], top[2]]
    assert second["capped"] == 3


def test_capping_is_off_by_default(
    settings: Settings,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    top: list[str],
) -> None:
    with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
        bodies = [_ask(client, keys["read"], "k=4") for _ in range(4)]
    assert all(_items(b) == top[:4] and b["capped"] == 0 for b in bodies)


def test_a_page_view_never_repeats_an_item_across_workers(
    store_url: str,
    bundle_dir: Path,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    top: list[str],
) -> None:
    """Worker A answers the home placement; worker B, with its own log and store connection,
    answers the next placement of the same page view at once: the writer's 1 s flush has not
    run, so only the page view's synchronous store write can tell B what A showed."""
    settings = _settings(store_url, bundle_dir)  # capping itself off: page views need no config
    other = open_store(store_url)
    try:
        with (
            TestClient(create_app(settings, bundle=bundle, store=store)) as a,
            TestClient(create_app(settings, bundle=bundle, store=other)) as b,
        ):
            read = keys["read"]
            home = _ask(a, read, "k=5&placement=home&page_view_id=pv-1")
            assert other.get_decision(home["recommendation_id"]).page_view == "pv-1"  # type: ignore[union-attr]
            product = _ask(b, read, "k=5&placement=product_page&page_view_id=pv-1")
            cart = _ask(a, read, "k=5&placement=cart&page_view_id=pv-1")
            fresh = _ask(b, read, "k=5&placement=home&page_view_id=pv-2")
    finally:
        other.close()
    assert _items(home) == top[:5] and home["page_view_excluded"] == 0
    assert _items(product) == top[5:10] and product["page_view_excluded"] == 5
    assert _items(cart) == top[10:15] and cart["page_view_excluded"] == 10
    assert _items(fresh) == top[:5] and fresh["page_view_excluded"] == 0  # another page view


def test_page_view_id_is_validated_and_needs_the_decision_log(
    store_url: str,
    bundle_dir: Path,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
) -> None:
    settings = Settings(
        store={"url": store_url}, serving={"model_dir": bundle_dir}, decisions={"enabled": False}
    )
    with TestClient(create_app(settings, bundle=bundle, store=store)) as client:
        url = "/v1/users/u1/recommendations?page_view_id="
        empty = client.get(url, headers=keys["read"])
        assert empty.status_code == 422 and "page_view_id" in empty.text
        off = client.get(url + "pv-1", headers=keys["read"])
        assert off.status_code == 409 and "decision log" in off.json()["detail"]


def _pipeline(records: list[dict[str, Any]], rules: list[dict[str, Any]]) -> Pipeline:
    frame, _ = validate_events(records, EventSettings())
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "knn", "model": "itemknn", "quota": 30}]},
            "ranking": {"enabled": False},
            "rerank": {"rules": rules},
        }
    )
    return train_pipeline(config, frame, dict(EventSettings().weights))


@pytest.mark.parametrize("action", ["drop", "demote"])
def test_a_pinned_item_is_never_capped_and_keeps_its_slot(
    action: str,
    store_url: str,
    bundle_dir: Path,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    training_records: list[dict[str, Any]],
) -> None:
    plain = _pipeline(training_records, [])
    order = [str(i) for i in plain.recommend(["u1"], 20).item_ids[0]]
    a, b, pinned, c, d = order[:5]  # the pin holds the item where it ranks anyway: slot 3
    pipe = _pipeline(training_records, [{"type": "pin", "item": pinned, "position": 3}])
    settings = _settings(store_url, bundle_dir, enabled=True, max_shows=1, action=action)
    with TestClient(create_app(settings, bundle=pipe, store=store)) as client:  # type: ignore[arg-type]
        first = _ask(client, keys["read"], "k=3&placement=home")
        second = _ask(client, keys["read"], "k=5&placement=cart")
    assert _items(first) == [a, b, pinned]
    if action == "demote":  # a and b sink; c and d rise around the pinned slot
        assert _items(second) == [c, d, pinned, a, b] and second["capped"] == 2
    else:  # a and b are gone; the re-ranker fills from the rest, the pin in its slot
        assert _items(second) == [c, d, pinned, *order[5:7]] and second["capped"] == 2
