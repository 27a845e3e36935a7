"""Identity merge over HTTP, on SQLite and PostgreSQL: a visitor browses, logs in, and their next
list as the user follows what they browsed; the link rule (conflicts, chains, self) and unlinking;
an erased user's linked visitor history goes with them. The ``identify`` event does the same
through ``POST /v1/events``, an import and a dead-letter replay: a retry is a duplicate, the door
names missing ids and items, the link rule and an erasure refuse it, every link is audited."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsmith.config import EventSettings, Settings
from recsmith.pipeline.runtime import Pipeline
from recsmith.serving import create_app
from recsmith.store.base import EventStore
from recsmith.store.dead_letter_replay import replay_dead_letters
from recsmith.store.ingest import ingest_events

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


def _unseen_popular(records: list[dict[str, Any]], user: str) -> list[str]:
    """Two items the model knows well that ``user`` never touched."""
    counts = Counter(e["item_id"] for e in records)
    theirs = {e["item_id"] for e in records if e["user_id"] == user}
    return [item for item, _ in counts.most_common() if item not in theirs][:2]


def _reasons(answer: dict[str, Any]) -> list[str]:
    return [item["reason"] for item in answer["items"]]


def test_a_visitor_who_logs_in_gets_lists_from_what_they_browsed(
    app_client: TestClient,
    keys: Headers,
    pipeline: Pipeline,
    training_records: list[dict[str, Any]],
) -> None:
    picked = _unseen_popular(training_records, "u7")
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
    # unmerge undoes it: the moved items leave the user's recent items, and the list follows the
    # user's own history again
    gone = app_client.delete("/v1/users/u7/aliases/visit-1", headers=keys["ingest"])
    assert gone.json()["unlinked"] is True
    unmerged = app_client.get(path, headers=keys["read"]).json()
    assert not set(_reasons(unmerged)) & set(browsed), unmerged
    assert [i["item_id"] for i in unmerged["items"]] == [i["item_id"] for i in before["items"]]


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


# --- the identify event (``privacy.identify``) ---


def _post(client: TestClient, keys: Headers, events: list[dict[str, Any]]) -> dict[str, Any]:
    response = client.post("/v1/events", json=events, headers=keys["ingest"])
    assert response.status_code == 200, response.text
    return response.json()


def _identify(user: str, session: str, **more: Any) -> dict[str, Any]:
    return {"event_type": "identify", "user_id": user, "session_id": session, **more}


def test_an_identify_event_after_browsing_makes_the_list_follow_it(
    app_client: TestClient,
    keys: Headers,
    store: EventStore,
    pipeline: Pipeline,
    training_records: list[dict[str, Any]],
) -> None:
    picked = _unseen_popular(training_records, "u7")
    now = time.time()
    browsing = [
        {"session_id": "visit-1", "item_id": item, "event_type": "view", "timestamp": now - 9 + n}
        for n, item in enumerate(picked)
    ]
    path = "/v1/users/u7/recommendations"
    browsed = {f"because you viewed {name}" for name in pipeline.display_names(picked)}
    before = app_client.get(path, headers=keys["read"]).json()
    assert not {i["reason"] for i in before["items"]} & browsed
    # browsing and login in one batch: the link follows the events it came with
    result = _post(app_client, keys, [*browsing, _identify("u7", "visit-1")])
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (3, 0, [])
    assert store.alias_map() == {"visit-1": "u7"}
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]
    assert runtime.state.recent("u7", 2) == picked[::-1]  # newest first, moved at once
    after = app_client.get(path, headers=keys["read"]).json()
    assert {i["reason"] for i in after["items"]} & browsed
    # a retry changes nothing: a duplicate, still audited like a repeated alias link
    again = _post(app_client, keys, [_identify("u7", "visit-1", event_id="login-1")])
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    links = [r for r in store.scan_audit(action="alias") if r.action == "alias.link"]
    assert [r.detail["changed"] for r in links] == [True, False]
    assert store.alias_map() == {"visit-1": "u7"}
    assert store.count_events() == len(browsing)  # an identify event is no interaction


def test_the_door_and_the_link_rule(
    app_client: TestClient, keys: Headers, store: EventStore
) -> None:
    now = time.time()
    view = {"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": now}
    result = _post(
        app_client,
        keys,
        [
            view,
            {"event_type": "identify", "user_id": "u1"},  # 1: no session
            _identify("u1", "s-1", item_id="i1"),  # 2: an item
            {"event_type": "identify", "session_id": "s-2"},  # 3: no user
            _identify("u1", "s-1"),  # 4: good
            _identify("u2", "s-1"),  # 5: another user's alias now
            _identify("u1", "u1"),  # 6: the user itself
            _identify("u1", "s-3", sesion_id="s-4"),  # 7: an unknown field
            {"user_id": "u1", "event_type": "view", "timestamp": now},  # 8: an event, no item
        ],
    )
    errors = {r["index"]: r["errors"] for r in result["rejected"]}
    assert errors == {
        1: [{"field": "session_id", "reason": "required"}],
        2: [{"field": "item_id", "reason": "an identify event names no item"}],
        3: [{"field": "user_id", "reason": "required"}],
        5: [
            {
                "field": "session_id",
                "reason": "is linked to another user ('u1'): unlink it there first",
            }
        ],
        6: [
            {
                "field": "session_id",
                "reason": "is the user itself (or an alias of it): nothing to link",
            }
        ],
        7: [{"field": "sesion_id", "reason": "unknown field (did you mean session_id?)"}],
        8: [{"field": "item_id", "reason": "required"}],
    }
    assert result["accepted"] == 2  # the view and the one good link
    assert store.alias_map() == {"s-1": "u1"}
    kept = {d.record_index: d.payload for d in store.dead_letters()}
    assert kept[5] == _identify("u2", "s-1")  # refused by the rule: kept whole for replay


def test_an_erased_person_is_not_linked_again(
    app_client: TestClient, keys: Headers, store: EventStore
) -> None:
    assert app_client.delete("/v1/users/u9", headers=keys["admin"]).status_code == 200
    result = _post(app_client, keys, [_identify("u9", "visit-9")])
    assert result["accepted"] == 0
    [refused] = result["rejected"]
    assert refused["errors"][0]["field"] == "user_id" and "erased" in refused["errors"][0]["reason"]
    assert store.alias_map() == {}
    assert all(d.payload == {} for d in store.dead_letters())  # naming nobody


def test_an_import_links_too(store: EventStore) -> None:
    frame = pd.DataFrame(
        {
            "user_id": [None, "u5"],
            "session_id": ["visit-5", "visit-5"],
            "item_id": ["i3", None],
            "event_type": ["view", "identify"],
            "timestamp": ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"],
        }
    )
    result = ingest_events(store, frame, EventSettings(), source="upload.csv", offset=10)
    assert (result.accepted, result.rejected) == (2, ())
    assert store.alias_map() == {"visit-5": "u5"}
    bad = frame.assign(session_id=["visit-6", None])
    refused = ingest_events(store, bad, EventSettings(), source="upload.csv", offset=10)
    assert [(r.index, r.errors[0].field) for r in refused.rejected] == [(11, "session_id")]


def test_a_refused_link_is_replayed_once_its_conflict_is_gone(store: EventStore) -> None:
    settings = EventSettings()
    ingest_events(store, [_identify("u1", "s-7")], settings, source="http:/v1/events")
    refused = ingest_events(store, [_identify("u2", "s-7")], settings, source="http:/v1/events")
    assert refused.rejected[0].errors[0].field == "session_id"
    assert replay_dead_letters(store, settings).refused_again == 1  # still u1's: kept
    assert len(store.dead_letters()) == 1
    assert store.unlink_alias("s-7", "u1")
    replayed = replay_dead_letters(store, settings)
    assert (replayed.stored, replayed.refused_again) == (1, 0)
    assert store.alias_map() == {"s-7": "u2"} and store.dead_letters() == []
