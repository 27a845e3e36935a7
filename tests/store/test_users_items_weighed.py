"""``users_items_weighed``: a group's users' items oldest first, and those they rated 0 or below
(the pair's newest event weighs 0 or below), on SQLite and PostgreSQL (issue #15: the plain read
knows no weights, so a release scoring a user from their stored items read a 0-star item as
liked history). Held to the hand-worked case and to an oracle outside SQL: each item's newest
stored event weighed by training's own rule (``features.interactions.event_weights``)."""

from __future__ import annotations

import pytest

from recsmith.config import EventSettings
from recsmith.events.latest import signal_of
from recsmith.features.interactions import event_weights
from recsmith.store.base import EventStore
from recsmith.testing.contracts import event, ingest

WEIGHTS = EventSettings().weights
#: user x's events, oldest first (an hour apart): item, type, value
MET = [
    ("A", "view", None),  # 1: liked
    ("B", "rating", 0.0),  # 0: seen, no signal
    ("C", "rating", -2.0),  # -2 ...
    ("C", "view", None),  # ... then viewed: the newest event decides, liked (as online)
    ("D", "view", None),  # 1 ...
    ("D", "rating", -1.0),  # ... then rated -1: unliked
    ("E", "play", 0.0),  # log(1 + 0) = 0: unliked
    ("F", "play", 3.0),  # log 4: liked
]


def _ingest(store: EventStore) -> None:
    events = [
        event(item, user="x", kind=kind, h=h, **({} if value is None else {"value": value}))
        for h, (item, kind, value) in enumerate(MET)
    ]
    events += [event("B", user="y", kind="rating", value=5.0), event("Z", user="y", h=1)]
    events.append(event("anon", user=None, session_id="s", kind="rating", value=-1.0))
    ingest(store, events)


def _oracle(store: EventStore, user: str) -> tuple[list[str], list[str]]:
    """Each item's newest event of ``user`` weighed as training weighs it; oldest first."""
    own = store.person_events(user).sort_values(["ts", "event_id"])
    newest = own.groupby("item_id", sort=False).tail(1).sort_values(["ts", "item_id"])
    liked = event_weights(newest, WEIGHTS) > 0
    items = newest["item_id"].tolist()
    return items, [i for i, keep in zip(items, liked.tolist(), strict=True) if not keep]


def test_a_group_reads_each_users_items_and_those_rated_zero_or_below(store: EventStore) -> None:
    _ingest(store)
    got = store.users_items_weighed(["x", "nobody", "y", "x"], signal_of(WEIGHTS))
    x = (["A", "B", "C", "D", "E", "F"], ["B", "D", "E"])  # by hand
    assert got == [x, ([], []), (["B", "Z"], []), x]
    assert got[0] == _oracle(store, "x") and got[2] == _oracle(store, "y")
    # the same items, in the same order, as the plain time-ordered read
    assert [items for items, _ in got] == store.users_items(["x", "nobody", "y", "x"], by_time=True)


def test_the_signal_is_the_deployments_weights(store: EventStore) -> None:
    """Under weights where a view weighs nothing and a play counts whatever its value, the
    same events read otherwise: what serving passes decides, not a rule of the store's."""
    _ingest(store)
    weights = {"view": 0.0, "rating": "value", "play": 1.0, "purchase": 1.0}
    (items, unliked), _ = store.users_items_weighed(["x", "y"], signal_of(weights))
    assert items == ["A", "B", "C", "D", "E", "F"] and unliked == ["A", "B", "C", "D"]


@pytest.mark.parametrize("low_first", [True, False], ids=["low-arrives-first", "low-last"])
@pytest.mark.parametrize("low_id", ["a", "b"], ids=["low-id-lower", "low-id-higher"])
def test_at_one_instant_the_event_weighing_zero_or_below_decides(
    store: EventStore, low_first: bool, low_id: str
) -> None:
    """A view and a -2 rating (X), a +5 and a -1 rating (Y), each pair sent in the same second,
    one ingest per event: whatever their arrival order or ids, the low one decides (the tie rule
    ``user_items_sql.NEWEST_EVENT_FIRST``, the online state's too), never the backend's order."""
    high_id = "b" if low_id == "a" else "a"
    pairs = [
        (
            event("X", f"x{high_id}", user="x"),
            event("X", f"x{low_id}", user="x", kind="rating", value=-2.0),
        ),
        (
            event("Y", f"y{high_id}", user="x", kind="rating", value=5.0, h=1),
            event("Y", f"y{low_id}", user="x", kind="rating", value=-1.0, h=1),
        ),
    ]
    for high, low in pairs:
        for one in (low, high) if low_first else (high, low):
            ingest(store, [one])
    assert store.users_items_weighed(["x"], signal_of(WEIGHTS)) == [(["X", "Y"], ["X", "Y"])]
