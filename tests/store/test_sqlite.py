"""SQLiteStore against the shared EventStore contract, plus what only a file-backed store has."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from recsmith.errors import StoreUnavailable
from recsmith.store.dead_letters import DeadLetterPolicy
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.contracts import EventStoreContract, OpenWith, event, ingest, scan_all


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "store.sqlite")
    yield s
    s.close()


@pytest.fixture
def open_with(tmp_path: Path) -> Iterator[OpenWith]:
    opened: list[SQLiteStore] = []

    def open_one(policy: DeadLetterPolicy) -> SQLiteStore:
        opened.append(SQLiteStore(tmp_path / f"policy-{len(opened)}.sqlite", policy))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


class TestSQLiteStore(EventStoreContract):
    """Every contract test, on a fresh file per test."""


def test_close_thread_closes_only_the_calling_threads_connection(store: SQLiteStore) -> None:
    """A background thread that stops reading lets go of its connection (``close_thread``, the
    shadow thread's once no shadow reads again): sqlite3 itself refuses the closed one, another
    thread's stays open, and the thread's next read opens a new one."""
    ingest(store, [event("a", "e1"), event("b", "e2", h=1)])
    other: list[sqlite3.Connection] = []
    reader = threading.Thread(target=lambda: (store.user_items("u1"), other.append(store._conn())))
    reader.start()
    reader.join()
    mine = store._conn()
    store.close_thread()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        mine.execute("SELECT 1")
    assert other[0].execute("SELECT COUNT(*) FROM events").fetchone() == (2,)
    assert store.user_items("u1", by_time=True) == ["a", "b"]


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


def test_a_full_disk_is_store_unavailable_naming_it_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLITE_FULL for real: ``max_page_count`` caps this connection's file (the test thread's
    own connection: each thread has one). SQLite rolls the transaction back itself, so the
    store's own ROLLBACK used to fail with "no transaction is active" and hide the cause."""
    store = SQLiteStore(tmp_path / "full.sqlite")
    try:
        ingest(store, [event("first", "e0")])
        conn = store._conn()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        big = [event(f"item-{k:05d}-{'x' * 200}", f"e{k}") for k in range(1, 2001)]
        for _ in range(3):
            with pytest.raises(StoreUnavailable) as info:
                ingest(store, big)
            assert info.value.cause == "database or disk is full"
        assert store.outage.failing == {"write"}
        assert store.count_events() == 1  # reads still work: no flapping outage
        store.heartbeat()  # one row fits where a batch does not: it must not end the outage
        assert store.outage.failing == {"write"}
        store.add_arm_counts([("arm", 1, 1, 0)])  # nor may another small write (a request's
        assert store.outage.failing == {"write"}  # decision record did, and the log flapped)
        with pytest.raises(StoreUnavailable):
            ingest(store, big)
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert ingest(store, big).accepted == 2000
        assert store.outage.failing == set()
    finally:
        store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "recsmith.store.outage"]
    assert len(lines) == 2, lines
    assert "unavailable" in lines[0] and "database or disk is full" in lines[0]
    assert "is back" in lines[1]
    assert not any(r.exc_info for r in caplog.records)


def test_a_read_only_store_fails_the_heartbeat_but_answers_reads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ro.sqlite")
    try:
        store.heartbeat()
        store._conn().execute("PRAGMA query_only = 1")  # writes fail as on a read-only file
        with pytest.raises(StoreUnavailable, match="readonly"):
            store.heartbeat()
        assert store.ping() is True
        assert store.count_events() == 0  # the heartbeat is not an event
    finally:
        store.close()


def test_tables_dropped_under_a_running_store_are_created_again(tmp_path: Path) -> None:
    path = tmp_path / "dropped.sqlite"
    store = SQLiteStore(path)
    try:
        ingest(store, [event("a", "e1")])
        with sqlite3.connect(path) as other:
            other.executescript("DROP TABLE events; DROP TABLE heartbeat;")
        assert store.count_events() == 0
        assert store.ping() is True
        assert ingest(store, [event("b", "e2")]).accepted == 1
        assert scan_all(store)["event_id"].tolist() == ["e2"]
    finally:
        store.close()


def test_a_dropped_table_found_by_a_scan_is_created_again(tmp_path: Path) -> None:
    path = tmp_path / "dropped-scan.sqlite"
    store = SQLiteStore(path)
    try:
        ingest(store, [event("a", "e1")])
        with sqlite3.connect(path) as other:
            other.execute("DROP TABLE events")
        assert list(store.scan()) == []
        assert ingest(store, [event("b", "e2")]).accepted == 1
    finally:
        store.close()


def test_a_bug_is_not_an_outage(tmp_path: Path) -> None:
    """A wrong query is raised as it is, not turned into a 503 to wait out."""
    store = SQLiteStore(tmp_path / "bug.sqlite")
    try:
        with pytest.raises(sqlite3.ProgrammingError):
            store.user_items(["not", "a", "string"])  # type: ignore[arg-type]
        assert store.outage.failing == set()
    finally:
        store.close()


def test_a_heartbeat_ends_a_write_outage_once_no_write_failed_lately(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle server gets no writes to show the store works again: its readiness heartbeat
    does, for write failures older than Outage.STALE_S."""
    from recsmith.store.outage import Outage

    store = SQLiteStore(tmp_path / "stale.sqlite")
    try:
        conn = store._conn()
        conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
        with pytest.raises(StoreUnavailable):
            ingest(store, [event(f"i{k}-{'x' * 200}", f"e{k}") for k in range(500)])
        conn.execute("PRAGMA max_page_count = 1073741823")
        store.heartbeat()
        assert store.outage.failing == {"write"}  # failed within STALE_S: still counts
        monkeypatch.setattr(Outage, "STALE_S", 0.0)
        store.heartbeat()
        assert store.outage.failing == set()
    finally:
        store.close()


def test_a_bulk_append_gives_its_large_page_cache_back(tmp_path: Path) -> None:
    """Every server thread has a connection of its own: none may keep an import's cache."""
    store = SQLiteStore(tmp_path / "bulk.sqlite")
    default = store._conn().execute("PRAGMA cache_size").fetchone()[0]
    records = [event(f"i{k % 50}", f"bulk-{k}", h=k / 3600) for k in range(12_000)]
    assert ingest(store, records).accepted == 12_000
    assert store._conn().execute("PRAGMA cache_size").fetchone()[0] == default
    store.close()


#: A second process holding a store's writer turn until its stdin closes.
_HOLDER = """
import sys
from recsmith.store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
with store.writer_turn():
    print("held", flush=True)
    sys.stdin.read()
"""


def _turn_taken(store: SQLiteStore) -> threading.Event:
    """Set once this process holds ``store``'s writer turn (taken in a thread, then given back)."""
    taken = threading.Event()

    def take() -> None:
        with store.writer_turn():
            taken.set()

    threading.Thread(target=take, daemon=True).start()
    return taken


@pytest.mark.parametrize("ending", ["commit ends", "kill -9"])
def test_the_writer_turn_excludes_other_processes_until_they_end_or_die(
    tmp_path: Path, ending: str
) -> None:
    """Another process's turn blocks this one's; it is handed over when that process leaves it,
    or dies holding it (the kernel drops a dead process's flock: no stale lock to clean up)."""
    path = tmp_path / "store.sqlite"
    store = SQLiteStore(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        taken = _turn_taken(store)
        assert not taken.wait(0.3)  # waits while the other process holds the turn
        if ending == "kill -9":
            holder.kill()
        else:
            assert holder.stdin is not None
            holder.stdin.close()
        assert taken.wait(10)
    finally:
        holder.kill()
        holder.wait(10)
        store.close()


def three_users_out_of_order(path: Path, indexed: bool) -> tuple[SQLiteStore, list[str]]:
    """A store at ``path`` of 120 events, items with repeats and out of id order, user ``u{n % 3}``
    at hour n / 50 for the n-th name; without the user-item index where ``indexed`` is false (an
    old layout scans the table). Returns the store and the names in the order written."""
    store = SQLiteStore(path)
    names = [f"i{(n * 7919) % 40:02d}" for n in range(120)]  # repeats, out of order
    ingest(store, [event(i, h=n / 50, user=f"u{n % 3}") for n, i in enumerate(names)])
    if not indexed:
        with sqlite3.connect(path) as conn:
            conn.execute("DROP INDEX events_user_item")
    return store, names


@pytest.mark.parametrize("indexed", [True, False], ids=["user-item index", "no index"])
def test_user_items_in_select_distincts_order(tmp_path: Path, indexed: bool) -> None:
    """The one-row JSON read gives the items in the order ``SELECT DISTINCT`` gives them, read
    here by a connection of its own, with the store's index and without it (an old layout
    scans the table)."""
    path = tmp_path / "order.sqlite"
    store, _ = three_users_out_of_order(path, indexed)
    try:
        with sqlite3.connect(path) as conn:
            expected = {
                u: [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT item_id FROM events WHERE user_id = ?", (u,)
                    )
                ]
                for u in ("u0", "u1", "u2", "nobody")
            }
        assert expected["u1"] != sorted(expected["u1"]) or indexed  # the scan's own order
        assert {u: store.user_items(u) for u in expected} == expected
    finally:
        store.close()


@pytest.mark.parametrize("indexed", [True, False], ids=["user-item index", "no index"])
def test_user_items_by_time_in_time_order(tmp_path: Path, indexed: bool) -> None:
    """The one-row JSON read ``by_time`` (and the group read) gives the items oldest first by
    each one's latest event, as worked out here from the events written (not by SQL), with the
    store's index and without it (an old layout scans the table): neither the index's order
    nor the scan's."""
    path = tmp_path / "order.sqlite"
    store, names = three_users_out_of_order(path, indexed)
    try:
        latest: dict[str, dict[str, int]] = {"u0": {}, "u1": {}, "u2": {}, "nobody": {}}
        for n, item in enumerate(names):  # h grows with n: the later event is the latest
            latest[f"u{n % 3}"][item] = n
        expected = {u: sorted(at, key=lambda i: at[i]) for u, at in latest.items()}
        assert expected["u1"] != sorted(expected["u1"])  # not the index's order by id
        assert {u: store.user_items(u, by_time=True) for u in expected} == expected
        assert {u: store.users_items([u], by_time=True)[0] for u in expected} == expected
    finally:
        store.close()
