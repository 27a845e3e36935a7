"""SQLiteStore against the shared EventStore contract, plus what only a file-backed store has."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.contracts import EventStoreContract, event, ingest, scan_all


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "store.sqlite")
    yield s
    s.close()


class TestSQLiteStore(EventStoreContract):
    """Every contract test, on a fresh file per test."""


def test_file_is_created_in_a_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.sqlite"
    store = SQLiteStore(path)
    try:
        assert path.is_file()
        assert store.url == f"sqlite:///{path}"
    finally:
        store.close()


def test_wal_mode_is_on(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:  # WAL is persistent: a fresh connection sees it
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite"
    first = SQLiteStore(path)
    ingest(first, [event("0739079891", "e1"), event("b", "e2", h=1)])
    first.close()
    again = SQLiteStore(path)
    try:
        out = scan_all(again)
        assert out["event_id"].tolist() == ["e1", "e2"]
        assert out["item_id"].tolist() == ["0739079891", "b"]
        assert again.count_events() == 2
    finally:
        again.close()


def test_a_bulk_append_gives_its_large_page_cache_back(tmp_path: Path) -> None:
    """Every server thread has a connection of its own: none may keep an import's cache."""
    store = SQLiteStore(tmp_path / "bulk.sqlite")
    default = store._conn().execute("PRAGMA cache_size").fetchone()[0]
    records = [event(f"i{k % 50}", f"bulk-{k}", h=k / 3600) for k in range(12_000)]
    assert ingest(store, records).accepted == 12_000
    assert store._conn().execute("PRAGMA cache_size").fetchone()[0] == default
    store.close()
