"""The server's recent items (the online state, fed by every stored event) are those training
calls recent (``pipeline.training.recent_items``): a user's positively weighted items. A rating
of 0 or below, or a play of 0 (``log_value``: log 1 = 0), is seen — the store holds it and
every list leaves it out — but no anchor for the 'recent' sources (issue #15: online such an
item fed them; offline it never did). The online state keeps such an item as seen, so a list
leaves it out while the store's read is down too."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.serving.conftest import EventFactory
from tests.serving.test_online_state import REDIS_URL, _shared_redis

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.errors import StoreUnavailable
from recsmith.events.latest import latest_items, latest_of_rows
from recsmith.events.schema import EVENT_COLUMNS
from recsmith.features.interactions import Interactions
from recsmith.pipeline.training import recent_items
from recsmith.serving import create_app
from recsmith.serving.online_state import LocalState, OnlineState, RedisState
from recsmith.store.base import EventStore

#: user x's events, oldest first: what each weighs under the default ``events.weights``
EVENTS = [
    ("A", "view", None),  # 1
    ("B", "rating", 0.0),  # 0: seen, no signal
    ("C", "rating", 4.0),  # 4
    ("D", "rating", -2.0),  # -2
    ("E", "play", 0.0),  # log(1 + 0) = 0
    ("F", "play", 3.0),  # log 4
]


def test_recent_items_online_are_the_positively_weighted_ones_as_offline(
    client: TestClient, keys: dict[str, dict[str, str]], make_event: EventFactory, store: EventStore
) -> None:
    start = time.time() - 600
    batch = [
        make_event(user_id="x", item_id=item, event_type=kind, value=value, timestamp=start + n)
        for n, (item, kind, value) in enumerate(EVENTS)
    ]
    response = client.post("/v1/events", json=batch, headers=keys["ingest"])
    assert response.status_code == 200 and response.json()["accepted"] == len(EVENTS)
    history = client.get("/v1/admin/users/x/history", headers=keys["admin"]).json()
    assert sorted(history["items"]) == list("ABCDEF")  # every item stays seen
    assert history["recent"] == ["F", "C", "A"]  # newest first, by hand
    # offline: training's recent items of the same stored events
    data = Interactions.from_events(store.person_events("x"), EventSettings().weights)
    row = recent_items(data, 10)[[data.users.to_index(np.array(["x"], dtype=object))[0]]]
    assert sorted(data.items.to_external(row.indices).tolist()) == sorted(history["recent"])


def test_the_pairs_fed_to_the_online_state_mark_events_weighing_nothing() -> None:
    # a frame (an import, a stream) and a small group's plain rows: the same pairs
    rows = [
        (f"e{n}", "x", None, item, kind, value, 1_000 + n, None, None, None)
        for n, (item, kind, value) in enumerate(EVENTS)
    ]
    weights = EventSettings().weights
    expected = [("x", "A"), ("x", "/B"), ("x", "C"), ("x", "/D"), ("x", "/E"), ("x", "F")]
    assert latest_of_rows(rows, weights) == expected
    assert latest_items(pd.DataFrame(rows, columns=list(EVENT_COLUMNS)), weights) == expected
    # a type weighed by a constant of 0 is never a signal, one above 0 always
    assert latest_of_rows(rows, {**weights, "view": 0.0}) == [("x", "/A"), *expected[1:]]


def _recent_online_and_offline(
    events: list[tuple[str, str, float | None]],
) -> tuple[list[str], list[str]]:
    """User x's recent items in the online state fed ``events`` (oldest first), and training's
    recent items of the same events."""
    rows = [
        (f"e{n}", "x", None, item, kind, value, 1_000 + n, None, None, None)
        for n, (item, kind, value) in enumerate(events)
    ]
    weights = EventSettings().weights
    state = LocalState()
    state.push(latest_of_rows(rows, weights))
    data = Interactions.from_events(pd.DataFrame(rows, columns=list(EVENT_COLUMNS)), weights)
    offline = data.items.to_external(recent_items(data, 10)[[0]].indices).tolist()
    return sorted(state.recent("x", 10)), sorted(offline)


def test_a_view_then_a_low_rating_is_no_recent_item_online_as_offline() -> None:
    # A: view (1) then rating -2, net -1; B: rating 0 then click (1), net 1; C: rating 4
    events = [("A", "view", None), ("A", "rating", -2.0), ("B", "rating", 0.0)]
    online, offline = _recent_online_and_offline(
        [*events, ("B", "click", None), ("C", "rating", 4.0)]
    )
    assert online == offline == ["B", "C"]  # by hand: the pairs weighing above 0
    state = LocalState()
    state.push([("x", "A"), ("x", "/A"), ("x", "/Z"), ("x", "B"), ("x", "/B"), ("x", "B")])
    assert state.recent_and_seen("x", 10) == (["B"], ["Z", "A"])  # newest first, each once


def test_an_item_rated_0_stays_out_while_the_store_is_down(
    client: TestClient,
    keys: dict[str, dict[str, str]],
    make_event: EventFactory,
    store: EventStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "/v1/users/u1/recommendations?k=6"
    top = client.get(url, headers=keys["read"]).json()["items"][0]["item_id"]
    rated = make_event(user_id="u1", item_id=top, event_type="rating", value=0.0)
    assert client.post("/v1/events", json=[rated], headers=keys["ingest"]).json()["accepted"] == 1

    def down(*_: object, **__: object) -> None:
        raise StoreUnavailable("down", cause="test")

    monkeypatch.setattr(store, "user_items", down)
    monkeypatch.setattr(store, "users_items", down)
    monkeypatch.setattr(store, "users_items_weighed", down)  # a release scoring from items
    body = client.get(url, headers=keys["read"]).json()
    assert body["degraded"] == ["store"]  # the store's items were not read
    assert len(body["items"]) == 6 and top not in [x["item_id"] for x in body["items"]]


def test_the_deployments_weights_decide_what_is_recent(
    settings: Settings,
    bundle: ModelBundle,
    store: EventStore,
    keys: dict[str, dict[str, str]],
    make_event: EventFactory,
) -> None:
    # views weigh nothing here, and a "tip" weighs its value: ingested over HTTP
    weights = {**EventSettings().weights, "view": 0.0, "tip": "value"}
    custom = settings.model_copy(update={"events": EventSettings(weights=weights)})
    start = time.time() - 600
    events = [("A", "view", None), ("B", "tip", 2.0), ("C", "tip", 0.0), ("D", "click", None)]
    batch = [
        make_event(user_id="w", item_id=item, event_type=kind, value=value, timestamp=start + n)
        for n, (item, kind, value) in enumerate(events)
    ]
    with TestClient(create_app(custom, bundle=bundle, store=store)) as client:
        response = client.post("/v1/events", json=batch, headers=keys["ingest"])
        assert response.status_code == 200 and response.json()["accepted"] == len(events)
        history = client.get("/v1/admin/users/w/history", headers=keys["admin"]).json()
    assert history["recent"] == ["D", "B"]  # by hand: click 1, tip 2; view 0 and tip 0 not


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_at_one_instant_the_low_event_decides_online_whatever_the_order(kind: str) -> None:
    """A view and a -2 rating of A in the same second, in either order within a batch: A is seen,
    no recent item, as the store's weighed read says (``user_items_sql.NEWEST_EVENT_FIRST``)."""
    weights = EventSettings().weights
    for events in (
        [("A", "view", None), ("A", "rating", -2.0)],
        [("A", "rating", -2.0), ("A", "view", None)],
    ):
        user = f"tie-{uuid.uuid4().hex}"  # the shared Redis: ids of this run only
        rows = [
            (f"e{n}", user, None, item, kind_, value, 1_000, None, None, None)
            for n, (item, kind_, value) in enumerate([*events, ("B", "view", None)])
        ]
        state = _state(kind)
        try:
            state.push(latest_of_rows(rows, weights))
            assert state.recent_and_seen(user, 10) == (["B"], ["A"])
            frame_pairs = latest_items(pd.DataFrame(rows, columns=list(EVENT_COLUMNS)), weights)
            assert frame_pairs == latest_of_rows(rows, weights)
        finally:
            state.forget(user)
            state.close()


def _state(kind: str) -> OnlineState:
    """An in-process state, or one on the shared Redis (skips, or fails when required, without)."""
    if kind == "local":
        return LocalState()
    _shared_redis()
    return RedisState(REDIS_URL)
