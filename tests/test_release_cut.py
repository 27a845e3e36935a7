"""A release's store cut (``recsmith.release_cut``): when a release may vouch for a store's events
before its cut, and the bound serving reads a user's events from, on small hand-checked cases."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.release_cut import (
    MANIFEST_KEY,
    StoreCut,
    received_since,
    store_identity,
    uncovered_pairs,
)
from recsmith.store.open import open_store

T0 = 1_700_000_000.0


def _event(user: str | None, item: str, n: int, kind: str = "view", **extra: Any) -> dict[str, Any]:
    event = {"event_id": f"e{n}", "item_id": item, "event_type": kind, "timestamp": T0 + n}
    if user is not None:
        event["user_id"] = user
    return {**event, **extra}


def _trained(records: list[dict[str, Any]]) -> tuple[Any, ModelBundle]:
    frame, rejected = validate_events(records, EventSettings())
    assert rejected == []
    data = Interactions.from_events(frame, dict(EventSettings().weights))
    return frame, ModelBundle.train(data, create("popular"))


def _records(second_rating: float) -> list[dict[str, Any]]:
    """u1 viewed i1, i2; u2 viewed i1, rated i3 twice (-1, then ``second_rating``); a visitor
    (no user id) viewed i9."""
    return [
        _event("u1", "i1", 1),
        _event("u1", "i2", 2),
        _event("u2", "i1", 3),
        _event("u2", "i3", 4, "rating", value=-1.0),
        _event("u2", "i3", 5, "rating", value=second_rating),
        _event(None, "i9", 6, session_id="s1"),
    ]


def test_every_stored_pair_in_the_matrix_vouches_for_the_cut() -> None:
    # u2's ratings of i3 sum to -1 + 3 = 2 > 0: the pair is an entry, as every other pair is
    frame, bundle = _trained(_records(3.0))
    assert uncovered_pairs(frame, bundle) == 0
    cut = StoreCut("store-a", 123)
    cut.vouch(bundle, frame)
    assert bundle.manifest[MANIFEST_KEY] == {"store": "store-a", "received_since_us": 123}


def test_a_pair_training_dropped_refuses_the_cut() -> None:
    # u2's ratings of i3 sum to -1 + 0.5 < 0: "no positive signal", no entry in ``seen`` although
    # the store holds both events (its two rows are counted)
    frame, bundle = _trained(_records(0.5))
    assert bundle.users.to_index(["u2"])[0] >= 0 and bundle.items.to_index(["i3"])[0] >= 0
    assert uncovered_pairs(frame, bundle) == 2
    StoreCut("store-a", 123).vouch(bundle, frame)
    assert bundle.manifest[MANIFEST_KEY] == {"uncovered_pairs": 2}
    assert received_since(bundle, "store-a", "u1") is None  # every stored item read, as before


def test_a_stored_item_the_release_does_not_know_refuses_the_cut() -> None:
    """An item with no learnt event (say, every weight of it not finite) is not in the release's
    index, but a catalogue change may add it there: a request would then exclude it, so the
    release cannot vouch for the user's stored events; a user it does not know can be left out
    (read in full per request)."""
    frame, bundle = _trained(_records(3.0))
    ghost = pd.DataFrame({"user_id": ["u1", "stranger", None], "item_id": ["ghost", "i1", "i9"]})
    assert uncovered_pairs(pd.concat([frame, ghost], ignore_index=True), bundle) == 1


def test_serving_bound_only_for_known_users_of_the_same_store() -> None:
    frame, bundle = _trained(_records(3.0))
    assert received_since(bundle, "store-a", "u1") is None  # no cut recorded: read everything
    StoreCut("store-a", 123).vouch(bundle, frame)
    assert received_since(bundle, "store-a", "u1") == 123
    assert received_since(bundle, "store-a", "u2") == 123
    assert received_since(bundle, "store-a", "newcomer") is None  # unknown: whole history
    assert received_since(bundle, "store-b", "u1") is None  # another store: whole history
    assert received_since(bundle, None, "u1") is None  # store identity unknown at start


def test_store_identity_is_the_stores_and_hides_its_salt(tmp_path: Path) -> None:
    first, second = open_store(f"sqlite:///{tmp_path / 'a.db'}"), None
    try:
        identity = store_identity(first)
        assert first.privacy_salt().hex() not in identity
        first.close()
        first = open_store(f"sqlite:///{tmp_path / 'a.db'}")
        assert store_identity(first) == identity  # reopened: the same store
        second = open_store(f"sqlite:///{tmp_path / 'b.db'}")
        assert store_identity(second) != identity
    finally:
        first.close()
        if second is not None:
            second.close()


def test_the_cut_lies_ten_minutes_before_the_read(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        before = time.time_ns() // 1000
        cut = StoreCut.take(store)
        after = time.time_ns() // 1000
    finally:
        store.close()
    ten_minutes = 600 * 1_000_000
    assert before - ten_minutes <= cut.received_since_us <= after - ten_minutes
