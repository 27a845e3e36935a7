"""POST /v1/events: per-record validation, idempotency, batch limits and body errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.store.reused_ids import REASON as REUSED
from recsmith.store.sqlite import SQLiteStore

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)

Headers = dict[str, dict[str, str]]


def test_valid_batch_is_stored(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    batch = [make_event(item_id=f"i{n}") for n in range(5)]
    response = client.post("/v1/events", json=batch, headers=keys["ingest"])
    assert response.status_code == 200
    assert response.json() == {
        "accepted": 5,
        "duplicates": 0,
        "rejected": [],
        "timestamped_by_server": 0,
        "attributed": [],
    }
    assert store.count_events() == 5
    assert sorted(store.user_items("u1")) == sorted(f"i{n}" for n in range(5))


def test_bad_records_are_rejected_by_index_and_neighbours_stored(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    batch = [
        make_event(item_id="ok-0"),
        make_event(event_type="teleport"),
        make_event(item_id="ok-2"),
        make_event(item_id=None, timestamp="not a time"),
        make_event(item_id="ok-4"),
    ]
    response = client.post("/v1/events", json=batch, headers=keys["ingest"])
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 3
    assert [r["index"] for r in body["rejected"]] == [1, 3]
    assert [e["field"] for e in body["rejected"][0]["errors"]] == ["event_type"]
    assert {e["field"] for e in body["rejected"][1]["errors"]} == {"item_id", "timestamp"}
    assert all(e["reason"] for r in body["rejected"] for e in r["errors"])
    assert sorted(store.user_items("u1")) == ["ok-0", "ok-2", "ok-4"]
    assert [d.record_index for d in store.dead_letters()] == [1, 3]


def test_resent_events_are_duplicates(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    batch = [make_event(item_id=f"i{n}") for n in range(3)]
    assert client.post("/v1/events", json=batch, headers=keys["ingest"]).json()["accepted"] == 3
    again = client.post("/v1/events", json=batch, headers=keys["ingest"]).json()
    assert again == {
        "accepted": 0,
        "duplicates": 3,
        "rejected": [],
        "timestamped_by_server": 0,
        "attributed": [],
    }
    assert store.count_events() == 3


def test_repeat_inside_one_batch_is_a_duplicate(
    client: TestClient, keys: Headers, make_event: Any
) -> None:
    event = make_event()
    body = client.post("/v1/events", json=[event, event], headers=keys["ingest"]).json()
    assert (body["accepted"], body["duplicates"]) == (1, 1)


def test_non_objects_are_rejected_at_their_index(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    batch = [
        7,
        make_event(item_id="a"),
        "text",
        make_event(event_type="nope"),
        make_event(item_id="b"),
        None,
    ]
    body = client.post("/v1/events", json=batch, headers=keys["ingest"]).json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [0, 2, 3, 5]
    assert body["rejected"][0]["errors"][0]["field"] == "record"
    assert body["rejected"][2]["errors"][0]["field"] == "event_type"
    assert sorted(store.user_items("u1")) == ["a", "b"]


def test_empty_array_is_fine(client: TestClient, keys: Headers) -> None:
    response = client.post("/v1/events", json=[], headers=keys["ingest"])
    assert response.json() == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [],
        "timestamped_by_server": 0,
        "attributed": [],
    }


def test_over_max_batch_is_413(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    batch = [make_event(item_id=f"i{n}") for n in range(51)]  # settings fixture: max_batch=50
    response = client.post("/v1/events", json=batch, headers=keys["ingest"])
    assert response.status_code == 413
    assert "max_batch" in response.json()["detail"]
    assert store.count_events() == 0
    assert client.post("/v1/events", json=batch[:50], headers=keys["ingest"]).status_code == 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"user_id": "u1"}', "JSON array"),
        (b'"hello"', "JSON array"),
        (b"[{not json", "not valid JSON"),
        (b"", "empty"),
        (b'[{"value": NaN}]', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),  # the decoder's recursion: not a 500
    ],
)
def test_body_that_is_not_an_array_is_422(
    client: TestClient, keys: Headers, body: bytes, reason: str
) -> None:
    response = client.post(
        "/v1/events", content=body, headers={**keys["ingest"], "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert reason in response.json()["detail"][0]["reason"]


def test_ingest_metrics_count_outcomes(client: TestClient, keys: Headers, make_event: Any) -> None:
    event = make_event()
    client.post(
        "/v1/events", json=[event, event, make_event(event_type="x")], headers=keys["ingest"]
    )
    text = client.get("/metrics").text
    assert 'recsmith_events_ingested_total{status="accepted"} 1.0' in text
    assert 'recsmith_events_ingested_total{status="duplicate"} 1.0' in text
    assert 'recsmith_events_ingested_total{status="rejected"} 1.0' in text


def test_an_event_id_reused_for_another_event_is_rejected_by_index(
    client: TestClient, keys: Headers, make_event: Any, store: SQLiteStore
) -> None:
    first = make_event(event_id="order-1", item_id="i1")
    assert client.post("/v1/events", json=[first], headers=keys["ingest"]).json()["accepted"] == 1
    retry = client.post(
        "/v1/events",
        json=[first, make_event(event_id="order-1", item_id="i2"), make_event(item_id="i3")],
        headers=keys["ingest"],
    ).json()
    assert (retry["accepted"], retry["duplicates"]) == (1, 1)
    assert retry["rejected"] == [{"index": 1, "errors": [{"field": "event_id", "reason": REUSED}]}]
    assert store.count_events() == 2


def test_a_lone_surrogate_is_a_field_error_and_the_neighbour_is_stored(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    """``"\\ud800"`` is valid JSON that UTF-8 cannot encode: once a 500 losing the whole batch."""
    good, bad = make_event(item_id="kept"), make_event(user_id="USER", KEY=1)
    # the unknown key is escaped readably, and still near the field it misspells
    body = json.dumps([bad, good]).replace('"USER"', '"a\\ud800"')
    body = body.replace('"KEY"', '"item_i\\udc00"')
    assert "\\ud800" in body and "\\udc00" in body
    headers = {**keys["ingest"], "Content-Type": "application/json"}
    response = client.post("/v1/events", content=body.encode(), headers=headers)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    errors = response.json()["rejected"][0]["errors"]
    assert {(e["field"], e["reason"]) for e in errors} == {
        ("user_id", "not valid Unicode (lone surrogate)"),
        ("item_i\\udc00", "unknown field (did you mean item_id?)"),
    }
    assert store.user_items("u1") == ["kept"]
    (letter,) = store.dead_letters()
    assert letter.payload["user_id"] == "a\\ud800" and letter.payload["item_i\\udc00"] == 1


def test_a_timestamp_without_a_zone_is_refused_by_default(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    batch = [make_event(timestamp="2026-01-01T10:00:00"), make_event(item_id="zoned")]
    body = client.post("/v1/events", json=batch, headers=keys["ingest"]).json()
    assert body["accepted"] == 1
    [error] = body["rejected"][0]["errors"]
    assert error["field"] == "timestamp" and "no time zone" in error["reason"]
    assert store.user_items("u1") == ["zoned"]


def test_a_non_object_record_with_a_lone_surrogate_is_dead_lettered_escaped(
    client: TestClient, store: SQLiteStore, keys: Headers, make_event: Any
) -> None:
    body = "[" + r'"a\ud800"' + ", " + json.dumps(make_event()) + "]"
    headers = {**keys["ingest"], "Content-Type": "application/json"}
    response = client.post("/v1/events", content=body.encode(), headers=headers)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    (letter,) = store.dead_letters()
    assert letter.payload == {"record": "a\\ud800"}  # readable text, not the surrogate itself
