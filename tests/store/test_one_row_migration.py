"""A store written by the version before lists were one row each (``decision_items``: one row
per shown item) is moved on its first open (``store.packed_items``), on SQLite and PostgreSQL.

The old tables are written here by hand from the old DDL and the old writer's rules (sources as
``json.dumps`` text, positions from 1, the unit and time repeated on every item row); the oracle
is the same lists written by this version into an empty store: every reader must answer the two
stores alike, and give back each list exactly as it was recorded. NaN and infinite scores move
too; positions left with a gap keep the count of their rows; a failure midway leaves the old
tables whole."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsmith.decisions.record import Decision, decision
from recsmith.privacy.marks import Mark
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend, postgres_url_or_skip

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
T0_US = 1_772_366_400_250_000

#: The old version's decision tables (base d586fc2), ``{int}`` and ``{real}`` per backend.
OLD_DDL = (
    "CREATE TABLE decisions (recommendation_id TEXT PRIMARY KEY, served_at {int} NOT NULL, "
    "unit TEXT, unit_kind TEXT NOT NULL, route TEXT NOT NULL, placement TEXT, "
    "release TEXT NOT NULL, experiment TEXT, variant TEXT, latency_ms {real}, "
    "page_view TEXT, size INTEGER NOT NULL, assignment_propensity {real}, arm TEXT, "
    "arm_propensity {real}, arm_context TEXT)",
    "CREATE INDEX decisions_served ON decisions (served_at)",
    "CREATE INDEX decisions_unit ON decisions (unit)",
    "CREATE TABLE decision_items (recommendation_id TEXT NOT NULL, position INTEGER NOT NULL, "
    "item_id TEXT NOT NULL, score {real} NOT NULL, sources TEXT NOT NULL, "
    "propensity {real} NOT NULL, unit TEXT, served_at {int} NOT NULL, "
    "PRIMARY KEY (recommendation_id, position))",
    "CREATE INDEX decision_items_unit ON decision_items (unit, item_id, served_at)",
)
OLD_HEAD = (
    "recommendation_id",
    "served_at",
    "unit",
    "unit_kind",
    "route",
    "placement",
    "release",
    "experiment",
    "variant",
    "latency_ms",
    "assignment_propensity",
    "page_view",
    "arm",
    "arm_propensity",
    "arm_context",
    "size",
)


def _lists() -> list[Decision]:
    """Lists of 0, 1, 3 and 12 items, two units sharing items, a unit-less list, awkward
    floats and ids, an exploring contextual list."""
    return [
        decision(
            f"r-{n:02d}",
            unit=None if n == 5 else f"u{n % 3}",
            unit_kind="none" if n == 5 else "user",
            route="recommendations",
            release="rel-1",
            item_ids=[f"i{(n * 7 + k) % 9}" for k in range(size)],
            scores=[1 / (k + 3) + n for k in range(size)],
            sources=[("als",) if k % 2 else ("als", "cooc") for k in range(size)],
            served_at=T0 + timedelta(seconds=n),
            propensities=[1 / (k + 2) for k in range(size)] if n == 7 else None,
            latency_ms=1.5 * n,
            page_view=f"pv-{n}" if n % 4 == 0 else None,
            arm="fresh" if n == 7 else None,
            arm_propensity=0.3 if n == 7 else None,
            arm_context=[0.1, 0.2 + n] if n == 7 else None,
        )
        for n, size in enumerate((3, 0, 1, 12, 3, 2, 3, 5, 1, 3))
    ] + [
        decision(
            "r-odd",
            unit="ü-user",
            unit_kind="user",
            route="recommendations",
            release="rel-2",
            item_ids=['quo"te', "back\\slash", "日本"],
            scores=[0.1 + 0.2, 5e-324, -0.0],
            sources=[("a|b",), (), ("x",)],
            served_at=T0 + timedelta(seconds=20),
        )
    ]


def _old_rows(lists: list[Decision]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The lists as the old writer stored them: a header row (``OLD_HEAD``) each, one item row
    each item (``decision_items``' columns in order)."""
    heads, items = [], []
    for d in lists:
        served = int(d.served_at.timestamp() * 1_000_000)
        context = None if d.arm_context is None else json.dumps(list(d.arm_context))
        heads.append(
            (
                *(d.recommendation_id, served, d.unit, d.unit_kind, d.route, d.placement),
                *(d.release, d.experiment, d.variant, d.latency_ms, d.assignment_propensity),
                *(d.page_view, d.arm, d.arm_propensity, context, len(d.item_ids)),
            )
        )
        for k, item in enumerate(d.item_ids):
            source = json.dumps(list(d.sources[k]))
            chance = d.propensities[k]
            items.append((d.recommendation_id, k + 1, item, d.scores[k], source, chance))
            items[-1] += (d.unit, served)
    return heads, items


def _write_old_sqlite(path: Path, lists: list[Decision]) -> None:
    heads, items = _old_rows(lists)
    with sqlite3.connect(path) as conn:
        for ddl in OLD_DDL:
            conn.execute(ddl.format(int="INTEGER", real="REAL"))
        marks = ", ".join("?" * len(OLD_HEAD))
        conn.executemany(f"INSERT INTO decisions ({', '.join(OLD_HEAD)}) VALUES ({marks})", heads)
        conn.executemany(f"INSERT INTO decision_items VALUES ({', '.join('?' * 8)})", items)
    conn.close()


@contextmanager
def _old_store(kind: str, tmp_path: Path, lists: list[Decision]) -> Iterator[tuple[Any, Any]]:
    """(how to open the old store with this version, a raw query on it), the old tables
    written by hand; a PostgreSQL schema of its own, dropped afterwards."""
    if kind == "sqlite":
        from recsmith.store.sqlite import SQLiteStore

        path = tmp_path / "old.sqlite"
        _write_old_sqlite(path, lists)

        def query(sql: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as conn:
                found = conn.execute(sql).fetchall()
            conn.close()
            return found

        yield (lambda: SQLiteStore(path)), query
        return
    import psycopg
    from psycopg import sql as psql

    from recsmith.store.postgres import PostgresStore

    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex}"
    heads, items = _old_rows(lists)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(psql.SQL("CREATE SCHEMA {}").format(psql.Identifier(schema)))
        conn.execute(psql.SQL("SET search_path TO {}").format(psql.Identifier(schema)))
        for ddl in OLD_DDL:
            conn.execute(ddl.format(int="BIGINT", real="DOUBLE PRECISION"))
        with conn.cursor() as cur:
            marks = ", ".join(["%s"] * len(OLD_HEAD))
            cur.executemany(
                f"INSERT INTO decisions ({', '.join(OLD_HEAD)}) VALUES ({marks})", heads
            )
            cur.executemany(f"INSERT INTO decision_items VALUES ({', '.join(['%s'] * 8)})", items)

    def query_pg(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(psql.SQL("SET search_path TO {}").format(psql.Identifier(schema)))
            cur = conn.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []

    try:
        yield (lambda: PostgresStore(f"{base}?schema={schema}")), query_pg
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(psql.SQL("DROP SCHEMA {} CASCADE").format(psql.Identifier(schema)))


TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')",
    "postgres": (
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema()"
    ),
}


def _answers(store: EventStore, lists: list[Decision]) -> dict[str, Any]:
    """What every reader of the decision log answers about ``lists``."""
    ids = [d.recommendation_id for d in lists]
    units = ["u0", "u1", "u2", "ü-user"]
    lo, hi = T0_US, T0_US + 30_000_000
    order = ["recommendation_id", "position"]
    return {
        "get": [store.get_decision(i) for i in [*ids, "r-none"]],
        "scan": store.scan_decisions(T0, T0 + timedelta(minutes=1)),
        "scan_part": store.scan_decisions(T0 + timedelta(seconds=3), T0 + timedelta(seconds=8)),
        "count": store.count_decisions(T0, T0 + timedelta(minutes=1)),
        "shown_in": store.shown_in(ids).sort_values(order, ignore_index=True),
        "shown_to": store.shown_to(units, lo + 2_000_000, lo + 9_000_000).sort_values(
            order, ignore_index=True
        ),
        "shows_of": {u: sorted(store.shows_of(u, lo, hi)) for u in units},
        "person": {u: store.person_decisions(u) for u in units},
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, b[key], check_exact=True)
        else:
            assert value == b[key], key


@pytest.mark.parametrize("kind", BACKENDS)
def test_an_old_store_answers_as_a_new_one_after_its_first_open(kind: str, tmp_path: Path) -> None:
    lists = _lists()
    with open_backend(kind, tmp_path / "fresh") as (fresh, _):
        fresh.append_decisions(lists)
        expected = _answers(fresh, lists)
        erased_fresh = fresh.erase_person("u1", Mark("s-u1", True, False, False))
    assert expected["get"] == [*lists, None]  # the oracle itself: every list exactly
    assert len(expected["scan"]) == sum(max(len(d.item_ids), 1) for d in lists)
    with _old_store(kind, tmp_path, lists) as (open_new, query):
        store = open_new()
        try:
            _same(_answers(store, lists), expected)
            names = {r[0] for r in query(TABLES[kind])}
            assert {"decision_items", "decision_items_unit", "decisions_unit"} & names == set()
            assert "decisions_unit_served" in names
            # new lists go in beside the moved ones, a moved one is not stored twice
            more = decision(
                "r-more",
                unit="u1",
                unit_kind="user",
                route="recommendations",
                release="rel-3",
                item_ids=["i1"],
                scores=[1.0],
                sources=[("als",)],
                served_at=T0,
            )
            assert store.append_decisions([lists[0], more]) == 1
            assert store.get_decision("r-more") == more
            erased = store.erase_person("u1", Mark("s-u1", True, False, False))
            assert erased["shown_items"] == erased_fresh["shown_items"] + 1
            assert erased["decisions"] == erased_fresh["decisions"] + 1
        finally:
            store.close()
        # a second open finds nothing to move
        again = open_new()
        try:
            assert again.get_decision(lists[3].recommendation_id) == lists[3]
        finally:
            again.close()


def _one_item(rid: str, unit: str, score: float) -> Decision:
    return decision(
        rid,
        unit=unit,
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=["a"],
        scores=[score],
        sources=[("als",)],
        served_at=T0,
    )


@pytest.mark.parametrize("kind", BACKENDS)
def test_nan_and_infinite_scores_of_an_old_store_are_moved_not_refused(
    kind: str, tmp_path: Path
) -> None:
    """The old layout held ±inf on both backends and NaN on PostgreSQL (SQLite stores a NaN
    REAL as NULL, which ``NOT NULL`` refused): they are packed as their names and read back."""
    odd = decision(
        "r-nonfinite",
        unit="u9",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=["a", "b", "c"],
        scores=[float("inf"), float("-inf"), float("nan") if kind == "postgres" else 2.0],
        sources=[("als",)] * 3,
        served_at=T0,
    )
    with _old_store(kind, tmp_path, [*_lists(), odd]) as (open_new, _):
        store = open_new()
        try:
            got = store.get_decision("r-nonfinite")
            assert got is not None and got.scores[:2] == (float("inf"), float("-inf"))
            assert got.scores[2] != got.scores[2] if kind == "postgres" else got.scores[2] == 2.0
            assert store.get_decision("r-03") == _lists()[3]
        finally:
            store.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_failure_midway_through_the_packing_leaves_the_old_tables_whole(
    kind: str, tmp_path: Path
) -> None:
    """More lists than one statement batch (``packed_items.BATCH``), so a batch of them is
    packed and the ``items`` column added before the last list's item row, whose sources text
    is not JSON (no writer wrote such a row: the failure is put there by hand), stops it."""
    lists = [*_lists(), *(_one_item(f"r-fill-{n:05d}", "u8", 1.0) for n in range(1_200))]
    lists.append(_one_item("r-zz-last", "u8", 1.0))
    with _old_store(kind, tmp_path, lists) as (open_new, query):
        _corrupt_sources(kind, query, "r-zz-last")
        items = query("SELECT * FROM decision_items ORDER BY recommendation_id, position")
        heads = query("SELECT * FROM decisions ORDER BY recommendation_id")
        with pytest.raises(Exception, match="Expecting value"):  # json.loads's message
            store = open_new()
            try:
                store.get_decision("r-00")  # PostgreSQL's schema step runs on the first call
            finally:
                store.close()
        assert query("SELECT * FROM decision_items ORDER BY recommendation_id, position") == items
        assert query("SELECT * FROM decisions ORDER BY recommendation_id") == heads  # no `items`
        names = {r[0] for r in query(TABLES[kind])}
        assert {"decision_items", "decision_items_unit", "decisions_unit"} <= names


def _corrupt_sources(kind: str, query: Any, rid: str) -> None:
    """Overwrite ``rid``'s item rows' sources with text that is not JSON (``query`` commits)."""
    sql = f"UPDATE decision_items SET sources = '[not json' WHERE recommendation_id = '{rid}'"
    if kind == "sqlite":
        query(sql)
    else:
        query(sql + " RETURNING 1")


@pytest.mark.parametrize("kind", BACKENDS)
def test_positions_with_a_gap_are_moved_with_the_size_their_rows_give(
    kind: str, tmp_path: Path
) -> None:
    """The old SQLite writer lost the item row of a NaN score and kept the list's ``size``
    (3 items, rows at positions 1 and 3), and could lose a one-item list's only row: erasing
    the unit counted the 2 rows left, and so does erasing it after the move."""
    gap = decision(
        "r-gap",
        unit="u9",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=["a", "lost", "c"],
        scores=[3.0, 2.0, 1.0],
        sources=[("als",)] * 3,
        served_at=T0,
    )
    lone = _one_item("r-lone", "u9", 1.0)
    with _old_store(kind, tmp_path, [*_lists(), gap, lone]) as (open_new, query):
        drop = "DELETE FROM decision_items WHERE (recommendation_id, position) IN "
        query(drop + "(('r-gap', 2), ('r-lone', 1))" + (" RETURNING 1" if kind != "sqlite" else ""))
        store = open_new()
        try:
            got = store.get_decision("r-gap")
            assert got is not None and got.item_ids == ("a", "c") and got.scores == (3.0, 1.0)
            sizes = query("SELECT recommendation_id, size FROM decisions WHERE unit = 'u9'")
            assert sorted(sizes) == [("r-gap", 2), ("r-lone", 0)]
            erased = store.erase_person("u9", Mark("s-u9", True, False, False))
            assert erased["shown_items"] == 2 and erased["decisions"] == 2
        finally:
            store.close()


#: A second process opening the old store: the usual busy timeout cut to 0.5 s, so the wait
#: for a lock held 2 s shows whether the first open of an old store waits longer.
OPENER = """
import sys, time
from recsmith.store import sqlite
sqlite._BUSY_TIMEOUT_S = 0.5
print("imported", flush=True)
began = time.monotonic()
store = sqlite.SQLiteStore(sys.argv[1])
found = store.get_decision("r-03") is not None
store.close()
print(f"{time.monotonic() - began:.2f} {found}")
"""


def test_processes_opening_an_old_store_at_once_wait_for_its_move(tmp_path: Path) -> None:
    """Two processes open a store written one row per item while a third is moving it and
    holds the write lock past their busy timeout: both wait, neither fails "database is
    locked", and neither moves it again once it gets the lock (``items`` is there by then)."""
    import subprocess
    import sys
    import time

    import recsmith
    from recsmith.decisions.rows import NO_ITEMS
    from recsmith.store import packed_items
    from recsmith.store.sqlite import SQLiteStore

    lists = _lists()
    path = tmp_path / "old.sqlite"
    SQLiteStore(path).close()  # every other table as it is now (WAL, as the old version's)
    heads, items = _old_rows(lists)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE decisions DROP COLUMN items")
        conn.execute(OLD_DDL[3].format(int="INTEGER", real="REAL"))
        marks = ", ".join("?" * len(OLD_HEAD))
        conn.executemany(f"INSERT INTO decisions ({', '.join(OLD_HEAD)}) VALUES ({marks})", heads)
        conn.executemany(f"INSERT INTO decision_items VALUES ({', '.join('?' * 8)})", items)
    conn.close()
    # a third process midway through the move: the column added, the lists packed, uncommitted
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute(f"ALTER TABLE decisions ADD COLUMN items TEXT NOT NULL DEFAULT '{NO_ITEMS}'")
    packed_items.pack_old_items(holder.execute(packed_items.OLD_ITEMS_SQL), holder.executemany, "?")
    for statement in packed_items.DROP_OLD_SQL:
        holder.execute(statement)
    env = {**os.environ, "PYTHONPATH": str(Path(recsmith.__file__).parents[1])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "imported\n"
        time.sleep(2.0)  # four busy timeouts of theirs
        holder.execute("COMMIT")
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        holder.close()
        for proc in procs:
            proc.kill()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        waited, found = out.split()
        assert found == "True" and float(waited) >= 1.0
    store = SQLiteStore(path)
    try:
        assert [store.get_decision(d.recommendation_id) for d in lists] == lists
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute(TABLES["sqlite"])}
    conn.close()
    assert "decision_items" not in names and "decisions_unit_served" in names


@pytest.mark.parametrize("kind", BACKENDS)
def test_lists_an_old_version_wrote_into_a_moved_store_move_on_the_next_open(
    kind: str, tmp_path: Path
) -> None:
    """In a rolling upgrade a process of the old version may open a moved store: it creates
    ``decision_items`` again and writes its lists the old way (a header row, ``items`` left at
    the column's default, and item rows). The next open by this version moves them too, though
    every other table and index is current (PostgreSQL's quick check that the schema is)."""
    lists = _lists()
    late = lists[3]
    with _old_store(kind, tmp_path, lists[:3]) as (open_new, query):
        store = open_new()
        try:
            store.append_decisions([late])  # then made as the old version writes it:
        finally:
            store.close()
        query(OLD_DDL[3].format(int="BIGINT", real="DOUBLE PRECISION"))
        for item in _old_rows([late])[1]:
            values = ", ".join("NULL" if v is None else repr(v) for v in item)
            query(f"INSERT INTO decision_items VALUES ({values})")
        query("UPDATE decisions SET items = '[[],[],[],[]]' WHERE recommendation_id = 'r-03'")
        again = open_new()
        try:
            assert [again.get_decision(d.recommendation_id) for d in lists[:4]] == lists[:4]
        finally:
            again.close()
        assert "decision_items" not in {r[0] for r in query(TABLES[kind])}
