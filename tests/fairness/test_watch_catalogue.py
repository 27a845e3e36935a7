"""The fairness watch's catalogue map, kept from the store's changes instead of a whole read per
refresh: after each write it must equal what the whole catalogue says (values written by hand)."""

from __future__ import annotations

from pathlib import Path

from recsmith.events.schema import Item
from recsmith.fairness.watch import CatalogueGroups
from recsmith.store.sqlite import SQLiteStore


def test_the_map_follows_new_items_and_changed_categories(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "events.db")
    store.upsert_items(
        [
            Item(item_id="a", categories=["x", "w"]),
            Item(item_id="b", categories=["y"]),
            Item(item_id="c"),
        ]
    )
    groups = CatalogueGroups(store)
    groups.update()
    assert groups.first == {"a": "x", "b": "y"} and groups.size == 3
    groups.update()  # nothing written: nothing changes
    assert groups.first == {"a": "x", "b": "y"} and groups.size == 3

    store.upsert_items([Item(item_id="b", categories=["z"]), Item(item_id="d", categories=["x"])])
    groups.update()
    assert groups.first == {"a": "x", "b": "z", "d": "x"} and groups.size == 4

    store.upsert_items([Item(item_id="a"), Item(item_id="c", categories=["y"])])
    groups.update()
    assert groups.first == {"b": "z", "c": "y", "d": "x"} and groups.size == 4
