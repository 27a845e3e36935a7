"""The server's recent items (the online state, fed by every stored event) are those training
calls recent (``pipeline.training.recent_items``): a user's positively weighted items. A rating
of 0 or below, or a play of 0 (``log_value``: log 1 = 0), is seen — the store holds it and
every list leaves it out — but no anchor for the 'recent' sources (issue #15: online such an
item fed them; offline it never did)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from tests.serving.conftest import EventFactory

from recsmith.config import EventSettings
from recsmith.events.latest import latest_items, latest_of_rows
from recsmith.events.schema import EVENT_COLUMNS
from recsmith.features.interactions import Interactions
from recsmith.pipeline.training import recent_items
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


def test_the_pairs_fed_to_the_online_state_skip_events_weighing_nothing() -> None:
    # a frame (an import, a stream) and a small group's plain rows: the same pairs
    rows = [
        (f"e{n}", "x", None, item, kind, value, 1_000 + n, None, None, None)
        for n, (item, kind, value) in enumerate(EVENTS)
    ]
    weights = EventSettings().weights
    expected = [("x", "A"), ("x", "C"), ("x", "F")]
    assert latest_of_rows(rows, weights) == expected
    assert latest_items(pd.DataFrame(rows, columns=list(EVENT_COLUMNS)), weights) == expected
    # a type weighed by a constant of 0 is never a signal, one above 0 always
    assert latest_of_rows(rows, {**weights, "view": 0.0}) == expected[1:]
