"""An item created with PUT reaches users' lists without a retrain (issue #12, "the first hour").

A real server process serves the default pipeline; another process (a second app on the same
store, as another worker or replica would be) creates the item. The server only learns of it
through its catalogue sync, polled here until it shows (the interval is shortened through the
settings, never slept through). The item has no collaborative score, so it enters each list where
the new-arrivals source alone puts it; it obeys availability, category rules and the user's own
items; and a release loaded later carries it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from live_server import live_server

from conftest import N_ITEMS
from recsmith.config import EventSettings, Settings
from recsmith.events.validate import validate_events, validate_items
from recsmith.pipeline.artifact import load_artifact, save_pipeline, train_pipeline
from recsmith.pipeline.config import default_pipeline_config
from recsmith.retrieval.merge import RRF_K
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore

NEW = "fresh-1"


@pytest.fixture(scope="module")
def pipeline_dir(
    tmp_path_factory: pytest.TempPathFactory, training_records: list[dict[str, Any]]
) -> Path:
    """The default pipeline (ranker off: the fused order is what the test reasons about) over
    the shared events and a catalogue of categories A (even items) and B, all two months old."""
    frame, _ = validate_events(training_records, EventSettings())
    created = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    items, rejected = validate_items(
        [
            {"item_id": f"i{i}", "categories": ["A" if i % 2 == 0 else "B"], "created_at": created}
            for i in range(N_ITEMS)
        ]
    )
    assert not rejected
    base = default_pipeline_config()
    config = base.model_copy(update={"ranking": base.ranking.model_copy(update={"enabled": False})})
    path = tmp_path_factory.mktemp("pipeline") / "release"
    save_pipeline(train_pipeline(config, frame, dict(EventSettings().weights), items=items), path)
    return path


@pytest.fixture
def setting(db_path: Path, pipeline_dir: Path) -> Settings:
    return Settings(
        store={"url": f"sqlite:///{db_path}"},
        serving={"model_dir": pipeline_dir, "catalog_sync_interval_s": 0.2},
    )


@pytest.fixture
def auth(store: SQLiteStore) -> dict[str, str]:
    _, secret = create_api_key(store, "new-items", ["ingest", "read"])
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def writer(setting: Settings, pipeline_dir: Path, store: SQLiteStore) -> Iterator[TestClient]:
    with TestClient(create_app(setting, bundle=load_artifact(pipeline_dir), store=store)) as c:  # type: ignore[arg-type]
        yield c


def listed(base: str, auth: dict[str, str], query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/v1/users/{query}", headers=auth, timeout=10)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def until(check: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    """Poll ``check`` until it holds (the server's catalogue sync runs every 0.2 s)."""
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, f"not within {limit_s} s: {what}"
        time.sleep(0.05)


def test_a_put_item_reaches_lists_through_the_sync_and_obeys_every_rule(
    setting: Settings,
    pipeline_dir: Path,
    store: SQLiteStore,
    writer: TestClient,
    auth: dict[str, str],
    training_records: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    had = {r["item_id"] for r in training_records if r["user_id"] == "u1"}
    with live_server(setting, tmp_path) as server:
        before = listed(server.base, auth, "u1/recommendations?k=60")
        assert NEW not in {i["item_id"] for i in before}
        put = writer.put(
            f"/v1/items/{NEW}",
            json={"categories": ["Fresh"], "created_at": datetime.now(UTC).isoformat()},
            headers=auth,
        )
        assert put.status_code == 200, put.text
        assert put.json()["servable"] == (
            "now in this server process, within 0.2 s in the others; 1 item(s) new since "
            "training have no collaborative score until the next training: they reach lists "
            "through new_arrivals (newest created_at first)"
        )

        def ids(query: str = "u1/recommendations?k=60") -> list[str]:
            return [i["item_id"] for i in listed(server.base, auth, query)]

        until(lambda: NEW in ids(), "the new item in u1's list")
        items = listed(server.base, auth, "u1/recommendations?k=60")
        # where new arrivals alone put it: EASE ranks every trained item u1 does not have (50
        # less u1's own), each worth more in the fused order than new arrivals' first place,
        # 0.1 / (60 + 1), which is the new item's score (the newest: created now)
        place = [i["item_id"] for i in items].index(NEW)
        assert place == N_ITEMS - len(had)
        assert items[place]["score"] == pytest.approx(0.1 / (RRF_K + 1), rel=1e-6)
        assert items[place]["sources"] == ["new_arrivals"]
        assert items[place]["reason"] == "new arrival"
        # a category rule: its own category lists it alone, another never
        assert ids("u1/recommendations?k=10&category=fresh") == [NEW]
        assert NEW not in ids("u1/recommendations?k=60&category=A")
        # availability, set by the other process
        writer.patch(f"/v1/items/{NEW}", json={"available": False}, headers=auth)
        until(lambda: NEW not in ids(), "the unavailable item leaving u1's list")
        writer.patch(f"/v1/items/{NEW}", json={"available": True}, headers=auth)
        until(lambda: NEW in ids(), "the item back once available")
        # a user who has it never gets it
        event = {"user_id": "u1", "item_id": NEW, "event_type": "view", "event_id": "u1-fresh"}
        sent = httpx.post(f"{server.base}/v1/events", json=[event], headers=auth, timeout=10)
        assert sent.status_code == 200, sent.text
        assert NEW not in ids()
        assert NEW in ids("u2/recommendations?k=60")
        # no model knows its neighbours, and the default pipeline has no content source: why
        similar = httpx.get(f"{server.base}/v1/items/{NEW}/similar", headers=auth, timeout=10)
        assert similar.status_code == 409 and "added after" in similar.text, similar.text
    # a release loaded later (a restart, a deploy) catches up with the item
    with TestClient(create_app(setting, bundle=load_artifact(pipeline_dir), store=store)) as later:  # type: ignore[arg-type]
        answer = later.get("/v1/users/u2/recommendations?k=60", headers=auth).json()
        assert NEW in [i["item_id"] for i in answer["items"]]
