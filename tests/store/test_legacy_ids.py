"""Ids stored under an older, looser rule ("/" was allowed) still load: the id rule is for records
arriving, not for a catalogue already kept, which a server and every training run must read."""

from __future__ import annotations

from pathlib import Path

from recsmith.events.schema import Item, User
from recsmith.events.validate import validate_items, validate_users
from recsmith.store.sqlite import SQLiteStore


def test_a_stored_item_and_user_with_a_slash_still_load(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    try:
        # what an older version accepted and stored (built without the door's context)
        store.upsert_items([Item(item_id="shop/sku-9", categories=["a"])])
        store.upsert_users([User(user_id="org/42")])
        assert [i.item_id for i in store.items()] == ["shop/sku-9"]
        assert store.get_item("shop/sku-9") is not None
        user = store.get_user("org/42")
        assert user is not None and user.user_id == "org/42"
    finally:
        store.close()
    # while the door refuses new ones
    assert validate_items([{"item_id": "shop/sku-9"}])[1][0].errors[0].field == "item_id"
    assert validate_users([{"user_id": "org/42"}])[1][0].errors[0].field == "user_id"
