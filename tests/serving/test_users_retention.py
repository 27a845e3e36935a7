"""``serve`` applies retention on a timer when ``privacy.purge_interval_h`` is set."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.ingest import ingest_events


def test_the_server_purges_old_events_on_its_timer(
    settings: Settings, bundle: ModelBundle, store: EventStore
) -> None:
    now = time.time()
    records = [
        {"event_id": eid, "user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": ts}
        for eid, ts in (("old", now - 5 * 86_400), ("new", now - 60))
    ]
    ingest_events(store, records, EventSettings(), source="test")
    timed = settings.model_copy(
        update={
            "privacy": settings.privacy.model_copy(
                update={"retain_events_days": 1.0, "purge_interval_h": 1.0}
            )
        }
    )
    with TestClient(create_app(timed, bundle=bundle, store=store)):
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not store.scan_audit(action="purge"):
            time.sleep(0.05)  # the first run starts with the server
    assert store.person_events("u1")["event_id"].tolist() == ["new"]
    [record] = store.scan_audit(action="purge")
    assert record.detail["events"] == 1


def test_no_timer_without_an_interval(
    settings: Settings, bundle: ModelBundle, store: EventStore
) -> None:
    old = {"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": time.time() - 9e5}
    ingest_events(store, [old], EventSettings(), source="test")
    kept = settings.model_copy(
        update={"privacy": settings.privacy.model_copy(update={"retain_events_days": 1.0})}
    )
    with TestClient(create_app(kept, bundle=bundle, store=store)):
        time.sleep(0.3)
    assert store.count_events() == 1 and store.scan_audit(action="purge") == []
