"""The decision log over HTTP: a list served is readable back as served, events naming it are
attributed in the response, and the KPIs and counters see both."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from recsmith.store.base import EventStore

Headers = dict[str, dict[str, str]]
STORES = ("sqlite", "postgres")  # the decision tables and attribution queries differ per backend


def flush(client: TestClient) -> None:
    client.app.state.runtime.decisions.flush()  # type: ignore[attr-defined]


def shown_as_served(served: dict[str, Any], recorded: dict[str, Any]) -> None:
    assert recorded["recommendation_id"] == served["recommendation_id"]
    assert recorded["release"] == served["model_version"]
    assert [
        (i["position"], i["item_id"], i["score"], i["sources"], i["propensity"])
        for i in recorded["items"]
    ] == [
        (n + 1, i["item_id"], i["score"], i["sources"], 1.0) for n, i in enumerate(served["items"])
    ]


def test_a_served_list_reads_back_identical_before_and_after_it_is_stored(
    client: TestClient, store: EventStore, keys: Headers
) -> None:
    served = client.get("/v1/users/u1/recommendations?k=5", headers=keys["read"]).json()
    assert len(served["items"]) == 5
    url = f"/v1/admin/decisions/{served['recommendation_id']}"
    pending = client.get(url, headers=keys["admin"])  # maybe still in the buffer
    assert pending.status_code == 200, pending.text
    shown_as_served(served, pending.json())
    flush(client)
    stored = store.get_decision(served["recommendation_id"])
    assert stored is not None and stored.unit == "u1" and stored.unit_kind == "user"
    assert stored.route == "recommendations"
    recorded = client.get(url, headers=keys["admin"]).json()
    shown_as_served(served, recorded)
    # the latency the route measured, as stored (the store's own read is the oracle here)
    assert stored.latency_ms is not None and stored.latency_ms > 0
    assert recorded["latency_ms"] == stored.latency_ms == pending.json()["latency_ms"]
    assert client.get(url, headers=keys["read"]).status_code == 403


def test_every_list_route_records_its_list(
    client: TestClient, store: EventStore, keys: Headers
) -> None:
    routes = {
        "/v1/users/visitor-9/recommendations?recent=i1,i2": ("recommendations", "visitor-9"),
        "/v1/items/i1/similar": ("similar", None),
        "/v1/popular": ("popular", None),
        "/v1/trending": ("trending", None),
    }
    ids = {}
    for url, expected in routes.items():
        answer = client.get(url, headers=keys["read"])
        assert answer.status_code == 200, answer.text
        ids[answer.json()["recommendation_id"]] = expected
    flush(client)
    for rid, (route, unit) in ids.items():
        stored = store.get_decision(rid)
        assert stored is not None and (stored.route, stored.unit) == (route, unit)
    visitor = next(
        store.get_decision(r) for r, (route, _) in ids.items() if route == "recommendations"
    )
    assert visitor is not None and visitor.unit_kind == "session"
    assert client.get("/v1/admin/decisions/" + "0" * 32, headers=keys["admin"]).status_code == 404
    refused = client.get("/v1/admin/decisions/not-an-id", headers=keys["admin"])
    assert refused.status_code == 422
    # what the id should be, in words (was "String should match pattern '^[0-9a-f]{32}$'")
    assert refused.json()["detail"] == [
        {
            "field": "recommendation_id",
            "reason": "'not-an-id' is not a recommendation_id as a response gives it "
            "(32 lowercase hex digits)",
        }
    ]


def test_events_naming_a_list_are_attributed_and_counted(
    client: TestClient, keys: Headers, make_event: Any
) -> None:
    served = client.get("/v1/users/u7/recommendations?k=3", headers=keys["read"]).json()
    rid, items = served["recommendation_id"], [i["item_id"] for i in served["items"]]
    now = time.time()
    batch = [
        make_event(
            user_id="u7",
            item_id=items[1],
            event_type="click",
            timestamp=now,
            recommendation_id=rid,
            position=2,
        ),
        make_event(
            user_id="u7", item_id=items[2], event_type="purchase", value=20.0, timestamp=now
        ),
        make_event(
            user_id="u7",
            item_id=items[0],
            event_type="click",
            timestamp=now,
            recommendation_id="f" * 32,
        ),
        make_event(
            user_id="u7",
            item_id=items[0],
            event_type="click",
            timestamp=now,
            recommendation_id=rid,
            position=3,
        ),
    ]
    body = client.post("/v1/events", json=batch, headers=keys["ingest"]).json()
    assert body["accepted"] == 2
    assert body["attributed"] == [
        {"index": 0, "rule": "explicit", "recommendation_id": rid},
        {"index": 1, "rule": "window", "recommendation_id": rid},
    ]
    assert [(r["index"], r["errors"][0]["field"]) for r in body["rejected"]] == [
        (2, "recommendation_id"),
        (3, "position"),
    ]
    metrics = client.get("/metrics").text
    release = served["model_version"]
    assert (
        f'recsmith_impressions_total{{release="{release}",route="recommendations",variant=""}} 3.0'
        in metrics
    )
    for kind, rule in (("click", "explicit"), ("purchase", "window")):
        line = (
            f'recsmith_attributed_events_total{{kind="{kind}",release="{release}",rule="{rule}",'
            'variant=""} 1.0'
        )
        assert line in metrics
    flush(client)
    kpis = client.get("/v1/admin/kpis?since=1h", headers=keys["admin"]).json()["groups"]
    assert [
        (g["group"], g["impressions"], g["clicks"], g["purchases"], g["revenue"]) for g in kpis
    ] == [("all", 3, 1, 1, 20.0)]
    by = client.get("/v1/admin/kpis?by=bogus", headers=keys["admin"])
    assert by.status_code == 422
