"""The privacy routes over HTTP (``serving/routers/users.py``), on SQLite and PostgreSQL: consent
to personalization and to tracking, export, who may call them, and an erasure made by one server
process reaching another (its own store connection and privacy view) within a second."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.events.schema import User
from recsmith.privacy.erase import KINDS
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.open import open_store

STORES = ("sqlite", "postgres")
Headers = dict[str, dict[str, str]]


def _views(client: TestClient, user: str, keys: Headers, n: int = 3) -> dict[str, Any]:
    events = [
        {"user_id": user, "item_id": f"i{i}", "event_type": "view", "timestamp": time.time() - 60}
        for i in range(n)
    ]
    return client.post("/v1/events", json=events, headers=keys["ingest"]).json()


def test_no_personalization_gives_the_anonymous_list_and_says_why(
    client: TestClient, keys: Headers, store: EventStore
) -> None:
    known = client.get("/v1/users/u1/recommendations", headers=keys["read"]).json()
    stranger = client.get("/v1/users/nobody-here/recommendations", headers=keys["read"]).json()
    assert known["tier"] == "personalised" and known["items"] != stranger["items"]
    put = client.put(
        "/v1/users/u1/consent",
        json={"personalization": False, "tracking": True},
        headers=keys["admin"],
    )
    assert put.json() == {"user_id": "u1", "personalization": False, "tracking": True}
    after = client.get("/v1/users/u1/recommendations", headers=keys["read"]).json()
    assert after["items"] == stranger["items"] and after["tier"] == "popular"
    assert "personalization" in after["not_personalised"]
    # tracking stays on: their events are still stored
    assert _views(client, "u1", keys)["accepted"] == 3
    client.put(
        "/v1/users/u1/consent",
        json={"personalization": True, "tracking": True},
        headers=keys["admin"],
    )
    again = client.get("/v1/users/u1/recommendations", headers=keys["read"]).json()
    assert again["tier"] == "personalised" and again["not_personalised"] is None


def test_no_tracking_refuses_their_events_with_a_reason_and_keeps_nothing(
    client: TestClient, keys: Headers, store: EventStore
) -> None:
    client.put(
        "/v1/users/quiet-one/consent",
        json={"personalization": True, "tracking": False},
        headers=keys["admin"],
    )
    answer = _views(client, "quiet-one", keys)
    assert answer["accepted"] == 0 and len(answer["rejected"]) == 3
    reason = answer["rejected"][0]["errors"][0]
    assert reason["field"] == "user_id" and "tracking" in reason["reason"]
    assert store.person_events("quiet-one").empty
    assert all("quiet-one" not in str(d.payload) for d in store.dead_letters(1000))
    assert _views(client, "someone-else", keys)["accepted"] == 3  # others are unaffected


def test_untracked_events_can_be_dropped_silently(
    settings: Settings, bundle: ModelBundle, store: EventStore, keys: Headers
) -> None:
    dropping = settings.model_copy(
        update={"events": settings.events.model_copy(update={"untracked": "drop"})}
    )
    with TestClient(create_app(dropping, bundle=bundle, store=store)) as client:
        client.put(
            "/v1/users/quiet-two/consent",
            json={"personalization": True, "tracking": False},
            headers=keys["admin"],
        )
        answer = _views(client, "quiet-two", keys)
    assert answer["accepted"] == 0 and answer["rejected"] == []
    assert store.person_events("quiet-two").empty and store.dead_letters(1000) == []


def test_export_holds_events_profile_decisions_and_consent(
    client: TestClient, keys: Headers, store: EventStore
) -> None:
    _views(client, "exported", keys, n=2)
    store.upsert_users([User(user_id="exported", properties={"plan": "gold"})])
    shown = client.get("/v1/users/exported/recommendations", headers=keys["read"]).json()
    client.app.state.runtime.decisions.flush()  # type: ignore[attr-defined]
    client.put(
        "/v1/users/exported/consent",
        json={"personalization": True, "tracking": True},
        headers=keys["admin"],
    )
    doc = client.get("/v1/users/exported/export", headers=keys["admin"]).json()
    assert [e["item_id"] for e in doc["events"]] == ["i0", "i1"]
    assert all(e["user_id"] == "exported" and e["timestamp"].endswith("Z") for e in doc["events"])
    assert doc["profile"] == {"plan": "gold"}
    assert [d["recommendation_id"] for d in doc["decisions"]] == [shown["recommendation_id"]]
    assert doc["decisions"][0]["items"] == [i["item_id"] for i in shown["items"]]
    assert doc["consent"] == {"personalization": True, "tracking": True}
    assert doc["erased"] is False
    # the fixture's keys are audited too (key.create): the person's own actions, in order
    audit = [r.action for r in store.scan_audit() if not r.action.startswith("key.")]
    assert audit == ["consent", "export"]
    assert all("exported" not in r.target for r in store.scan_audit())


def test_privacy_routes_need_the_admin_scope(client: TestClient, keys: Headers) -> None:
    for scope in ("read", "ingest"):
        assert client.delete("/v1/users/u1", headers=keys[scope]).status_code == 403
        assert client.get("/v1/users/u1/export", headers=keys[scope]).status_code == 403
        consent = {"personalization": False, "tracking": False}
        put = client.put("/v1/users/u1/consent", json=consent, headers=keys[scope])
        assert put.status_code == 403
    assert client.get("/v1/users/u1/export").status_code == 401


def test_bad_consent_bodies_name_the_field(client: TestClient, keys: Headers) -> None:
    put = client.put(
        "/v1/users/u1/consent",
        json={"personalization": "no", "tracking": False},
        headers=keys["admin"],
    )
    assert put.status_code == 422 and "personalization" in put.text
    put = client.put("/v1/users/u1/consent", json={"tracking": False}, headers=keys["admin"])
    assert put.status_code == 422 and "personalization" in put.text


def test_an_erased_person_has_no_consent_to_set(
    client: TestClient, keys: Headers, settings: Settings
) -> None:
    _views(client, "u2", keys, n=3)
    erased = client.delete("/v1/users/u2", headers=keys["admin"])
    removed = erased.json()["removed"]
    assert set(removed) == set(KINDS) and removed["aliases"] == 0  # every kind, 0 when none
    assert removed["events"] == 3 and removed["online_state"] == 3
    put = client.put(
        "/v1/users/u2/consent",
        json={"personalization": True, "tracking": True},
        headers=keys["admin"],
    )
    assert put.status_code == 409 and "erased" in put.text


def test_an_erasure_reaches_another_server_process_within_a_second(
    settings: Settings, bundle: ModelBundle, store: EventStore, store_url: str, keys: Headers
) -> None:
    """Two apps on two store connections: each has its own privacy view, as two workers do."""
    fast = settings.model_copy(
        update={
            "serving": settings.serving.model_copy(update={"catalog_sync_interval_s": 0.2}),
            "privacy": settings.privacy.model_copy(update={"erase_settle_s": 0.0}),
        }
    )
    other_store = open_store(store_url)
    try:
        with (
            TestClient(create_app(fast, bundle=bundle, store=store)) as one,
            TestClient(create_app(fast, bundle=bundle, store=other_store)) as two,
        ):
            _views(two, "u5", keys, n=2)  # the other worker's in-process online state has them
            other = two.app.state.runtime  # type: ignore[attr-defined]
            assert other.state.recent("u5", 5) == ["i1", "i0"]
            before = two.get("/v1/users/u5/recommendations", headers=keys["read"]).json()
            assert before["not_personalised"] is None
            assert one.delete("/v1/users/u5", headers=keys["admin"]).status_code == 200
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and other.state.recent("u5", 5):
                time.sleep(0.05)
            assert other.state.recent("u5", 5) == []
            after = two.get("/v1/users/u5/recommendations", headers=keys["read"]).json()
            assert after["not_personalised"] and after["tier"] == "popular"
            refused = _views(two, "u5", keys, n=1)
            assert refused["accepted"] == 0 and "erased" in str(refused["rejected"])
    finally:
        other_store.close()
