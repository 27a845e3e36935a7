"""Which read of a user's stored items serving makes for a release (``EventStore.user_items``
plain, or ``by_time``: oldest first), seen on the real store: each read is noted, then made.
Shared by the tests of a release that reads a history's order (two-tower) and one that does
not (item-kNN), so both drive the app the same three ways."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.serving import create_app
from recsmith.store.base import EventStore


def note_orders(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The ``by_time`` of every read of the store's ``user_items`` / ``users_items`` from now
    on, in order; each read is the store's own."""
    orders: list[bool] = []
    user_items, users_items = store.user_items, store.users_items

    def lone(user_id: str, *, by_time: bool = False) -> list[str]:
        orders.append(by_time)
        return user_items(user_id, by_time=by_time)

    def group(user_ids: Sequence[str], *, by_time: bool = False) -> list[list[str]]:
        orders.append(by_time)
        return users_items(user_ids, by_time=by_time)

    monkeypatch.setattr(store, "user_items", lone)
    monkeypatch.setattr(store, "users_items", group)
    return orders


def served_lists(
    release_dir: Path,
    store: EventStore,
    store_url: str,
    users: Sequence[str],
    keys: dict[str, dict[str, str]],
) -> dict[str, list[dict[str, Any]]]:
    """Each user's list asked three ways: with the response cache (the route reads the items),
    without it one by one (an embedded store's coalescer flush reads them) and as one burst
    (read together, by one group query on an embedded store); the bodies by way."""
    out: dict[str, list[dict[str, Any]]] = {}
    for way, entries in (("cached", 1000), ("computed", 0), ("burst", 0)):
        settings = Settings(
            store={"url": store_url},
            serving={"model_dir": release_dir, "cache_entries": entries, "max_batch": 50},
        )
        app = create_app(settings, bundle=ModelBundle.load(release_dir), store=store)

        async def run(app: Any = app, way: str = way) -> list[httpx.Response]:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    paths = [f"/v1/users/{u}/recommendations?k=50" for u in users]
                    asks = (client.get(p, headers=keys["read"]) for p in paths)
                    if way == "burst":
                        return list(await asyncio.gather(*asks))
                    return [await a for a in asks]

        responses = asyncio.run(run())
        assert [r.status_code for r in responses] == [200] * len(users)
        out[way] = [r.json() for r in responses]
    return out
