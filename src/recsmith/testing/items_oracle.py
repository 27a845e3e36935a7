"""The oracle of the tests of ``EventStore.users_items`` and of the reads gathered on it
(``serving.stored_items``): each user's distinct items by the test's own query, one user at a
time, not by the store's read under test."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing

from recsmith.store.base import EventStore
from recsmith.store.postgres import PostgresStore
from recsmith.store.sqlite import SQLiteStore

_QUERY = "SELECT DISTINCT item_id FROM events WHERE user_id = {}"


def items_alone(store: EventStore, user_ids: Sequence[str]) -> list[list[str]]:
    """Each user's distinct items, sorted (PostgreSQL's DISTINCT has no order): on SQLite by a
    connection of its own, on PostgreSQL by the store's schema-bound read helper."""
    if isinstance(store, SQLiteStore):
        with closing(sqlite3.connect(store.path)) as conn:
            rows = [conn.execute(_QUERY.format("?"), (u,)).fetchall() for u in user_ids]
    else:
        assert isinstance(store, PostgresStore)
        rows = [store._rows(_QUERY.format("%s"), (u,)) for u in user_ids]
    return [sorted(r[0] for r in found) for found in rows]
