"""A release whose model reads its users' items as a set (item-kNN; any pipeline) is served
by the plain read of a user's stored items, never the dearer one in time order
(``EventStore.user_items(by_time=True)``, BENCHMARKS §165), on every way the app reads them
(the route, the coalescer's flush, a gathered group), on SQLite and PostgreSQL; each list still
leaves out exactly its user's stored items (the oracle: ``items_alone``, the test's own query).
The two-tower side (every read by time) is in ``test_two_tower_profiles``."""

from __future__ import annotations

from pathlib import Path

import pytest
from read_orders import note_orders, served_lists

from recsmith.bundle import ModelBundle
from recsmith.store.base import EventStore
from recsmith.testing.contracts import event, ingest
from recsmith.testing.items_oracle import items_alone

STORES = ("sqlite", "postgres")  # each test that uses the store runs on both (conftest)


def test_a_release_reading_a_set_never_reads_by_time(
    bundle_dir: Path,
    store: EventStore,
    store_url: str,
    keys: dict[str, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ModelBundle.load(bundle_dir).history_in_time_order is False
    ingest(store, [event(f"i{n % 7}", user=f"u{n % 3}", h=n) for n in range(12)])
    users = ["u0", "u1", "u2", "nobody", "u0"]
    orders = note_orders(store, monkeypatch)
    bodies = served_lists(bundle_dir, store, store_url, users, keys)
    assert orders and set(orders) == {False}, orders
    for way, lists in bodies.items():
        for user, had, body in zip(users, items_alone(store, users), lists, strict=True):
            listed = {i["item_id"] for i in body["items"]}
            assert listed and not listed & set(had), (way, user)
            assert "store" not in body["degraded"]
