"""``POST /v1/events`` without a timestamp: the time received, and retries stay idempotent."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.store.sqlite import SQLiteStore

Headers = dict[str, dict[str, str]]


def _stored_ts_s(store: SQLiteStore, event_id: str) -> float:
    return int(store.events_by_id([event_id])["ts"].iloc[0]) / 1e6


def test_an_event_with_an_id_and_no_timestamp_gets_the_time_received(
    client: TestClient, keys: Headers, store: SQLiteStore, make_event: Any
) -> None:
    before = time.time()
    body = client.post(
        "/v1/events", json=[make_event(event_id="e-now", timestamp=None)], headers=keys["ingest"]
    ).json()
    after = time.time()
    assert body["accepted"] == 1 and body["rejected"] == []
    assert body["timestamped_by_server"] == 1
    assert before - 1e-3 <= _stored_ts_s(store, "e-now") <= after + 1e-3


def test_a_retry_of_a_stamped_event_is_a_duplicate_keeping_its_first_time(
    client: TestClient, keys: Headers, store: SQLiteStore, make_event: Any
) -> None:
    event = make_event(event_id="e-retry", timestamp=None)
    client.post("/v1/events", json=[event], headers=keys["ingest"])
    first = _stored_ts_s(store, "e-retry")
    time.sleep(0.01)  # the retry is received later: its stamp would differ
    body = client.post("/v1/events", json=[event], headers=keys["ingest"]).json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (0, 1, [])
    assert body["timestamped_by_server"] == 1
    assert _stored_ts_s(store, "e-retry") == first
    assert len(store.events_by_id(["e-retry"])) == 1


def test_an_event_with_neither_timestamp_nor_id_is_refused_naming_the_rule(
    client: TestClient, keys: Headers, make_event: Any
) -> None:
    batch = [make_event(event_id=None, timestamp=None), make_event(), make_event(timestamp=None)]
    body = client.post("/v1/events", json=batch, headers=keys["ingest"]).json()
    assert body["accepted"] == 2 and body["timestamped_by_server"] == 1
    [rejection] = body["rejected"]
    assert rejection["index"] == 0
    [error] = rejection["errors"]
    assert error["field"] == "timestamp" and "event_id" in error["reason"]


def test_events_sent_with_a_timestamp_are_not_counted_as_stamped(
    client: TestClient, keys: Headers, make_event: Any
) -> None:
    body = client.post("/v1/events", json=[make_event()], headers=keys["ingest"]).json()
    assert body["accepted"] == 1 and body["timestamped_by_server"] == 0


def test_imports_still_require_a_timestamp() -> None:
    record = {"event_id": "x", "user_id": "u", "item_id": "i", "event_type": "view"}
    frame, [rejection] = validate_events([record], EventSettings())
    assert len(frame) == 0
    assert [(e.field, e.reason) for e in rejection.errors] == [("timestamp", "required")]
