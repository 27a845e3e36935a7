"""Identity merge over HTTP, on SQLite and PostgreSQL: a visitor browses, logs in, and their next
list as the user follows what they browsed; the link rule (conflicts, chains, self) and unlinking;
an erased user's linked visitor history goes with them."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.base import EventStore

STORES = ("sqlite", "postgres")
Headers = dict[str, dict[str, str]]


@pytest.fixture
def app_client(settings: Settings, pipeline: Pipeline, store: EventStore) -> Any:
    fast = settings.model_copy(
        update={"privacy": settings.privacy.model_copy(update={"erase_settle_s": 0.0})}
    )
    with TestClient(create_app(fast, bundle=pipeline, store=store)) as client:  # type: ignore[arg-type]
        yield client


def _browse(client: TestClient, keys: Headers, session: str, items: list[str]) -> None:
    now = time.time()
    events = [
        {"session_id": session, "item_id": item, "event_type": "view", "timestamp": now - 60 + n}
        for n, item in enumerate(items)
    ]
    assert client.post("/v1/events", json=events, headers=keys["ingest"]).json()["accepted"] == 2


def _reasons(answer: dict[str, Any]) -> list[str]:
    return [item["reason"] for item in answer["items"]]


def test_a_visitor_who_logs_in_gets_lists_from_what_they_browsed(
    app_client: TestClient,
    keys: Headers,
    pipeline: Pipeline,
    training_records: list[dict[str, Any]],
) -> None:
    # two items the model knows well that u7 never touched
    counts = Counter(e["item_id"] for e in training_records)
    theirs = {e["item_id"] for e in training_records if e["user_id"] == "u7"}
    picked = [item for item, _ in counts.most_common() if item not in theirs][:2]
    _browse(app_client, keys, "visit-1", picked)
    path = "/v1/users/u7/recommendations"
    before = app_client.get(path, headers=keys["read"]).json()
    browsed = [f"because you viewed {name}" for name in pipeline.display_names(picked)]
    assert not set(_reasons(before)) & set(browsed), before
    linked = app_client.post(
        "/v1/users/u7/aliases", json={"session_id": "visit-1"}, headers=keys["ingest"]
    )
    assert linked.json() == {
        "user_id": "u7",
        "alias": "visit-1",
        "kind": "session",
        "changed": True,
        "moved_recent_items": 2,
    }
    after = app_client.get(path, headers=keys["read"]).json()
    assert set(_reasons(after)) & set(browsed), after  # the list follows what they browsed
    # linking again changes nothing and moves nothing
    again = app_client.post(
        "/v1/users/u7/aliases", json={"session_id": "visit-1"}, headers=keys["ingest"]
    ).json()
    assert again["changed"] is False and again["moved_recent_items"] == 0


def test_the_link_rule(app_client: TestClient, keys: Headers, store: EventStore) -> None:
    def link(user: str, **body: str) -> Any:
        return app_client.post(f"/v1/users/{user}/aliases", json=body, headers=keys["ingest"])

    assert link("u1", device_id="phone-1").status_code == 200
    taken = link("u2", device_id="phone-1")
    assert taken.status_code == 409 and "'u1'" in taken.text  # one device, two users: refused
    assert link("u1", session_id="u1").status_code == 409  # the user itself
    # a chain ends at its user: linking to an alias links to its user
    assert link("phone-1", session_id="tab-9").json()["user_id"] == "u1"
    # a user who becomes an alias brings their aliases along
    assert link("u3", session_id="s-3").status_code == 200
    assert link("u1", device_id="u3").json()["user_id"] == "u1"
    assert sorted(a for a, _, _ in store.aliases_of("u1")) == ["phone-1", "s-3", "tab-9", "u3"]
    bad = link("u1", session_id="a", device_id="b")
    assert bad.status_code == 422 and "session_id" in bad.text
    assert link("u1").status_code == 422
    # unlink: only from its own user
    assert (
        app_client.delete("/v1/users/u2/aliases/phone-1", headers=keys["ingest"]).status_code == 404
    )
    gone = app_client.delete("/v1/users/u1/aliases/phone-1", headers=keys["ingest"])
    assert gone.json() == {"user_id": "u1", "alias": "phone-1", "unlinked": True}
    assert link("u2", device_id="phone-1").status_code == 200  # free again
    actions = [r.action for r in store.scan_audit(action="alias")]
    assert actions.count("alias.link") == 5 and actions.count("alias.unlink") == 1


def test_erasing_a_user_takes_their_linked_visitor_history(
    app_client: TestClient, keys: Headers, store: EventStore
) -> None:
    _browse(app_client, keys, "visit-2", ["i1", "i2"])
    app_client.post("/v1/users/u9/aliases", json={"session_id": "visit-2"}, headers=keys["ingest"])
    exported = app_client.get("/v1/users/u9/export", headers=keys["admin"]).json()
    assert [a["alias"] for a in exported["aliases"]] == ["visit-2"]
    own = len(store.person_events("u9"))
    removed = app_client.delete("/v1/users/u9", headers=keys["admin"]).json()["removed"]
    assert removed["events"] == own + 2 and removed["aliases"] == 1
    assert store.alias_map() == {}
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.state.recent("visit-2", 5) == []
