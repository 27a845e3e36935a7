"""The store at scale, on both backends: the request path's and erasure's queries find their rows
through indexes, an older database gets the indexes added since on first use, and PostgreSQL's
columnar ``scan`` (``store.copy_columns``) returns exactly what was stored.

Plans are read, never timed: PostgreSQL's from ``auto_explain`` (the plan of every statement the
store runs on its own connection, sent back as a notice), SQLite's with ``EXPLAIN QUERY PLAN``
of every statement the store ran (its trace callback gives them with their values). The tables
hold tens of thousands of rows, ANALYZEd, so PostgreSQL's planner prefers a sequential scan
wherever no index fits.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from recsmith.decisions.record import decision
from recsmith.privacy.marks import Mark
from recsmith.store.base import EventStore, from_micros
from recsmith.testing.backends import BACKENDS, open_backend
from recsmith.testing.contracts import frame

EVENTS = 40_000
USERS = 2_000
SESSIONS = 4_000
DEAD_LETTERS = 5_000
#: Every 10th event has no user: an anonymous visitor known by its session only.
FILL_EVENTS = f"""
SELECT 'e' || g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'u' || (g % {USERS}) END,
    's' || (g % {SESSIONS}), 'i' || (g % 700), 'view', NULL,
    1600000000000000 + g * CAST(1000000 AS BIGINT), NULL, 0, NULL, NULL FROM nums
"""
LISTS = 20_000
#: Served lists of five items, ``d<g>`` to user ``u<g mod USERS>``, its items ``i<(5g + k) mod
#: 700>`` (k = 0 … 4) packed as the writer packs them (``decisions.rows.pack_items``).
FILL_IDS = " || '\",\"' || ".join(f"'i' || ((5 * g + {k}) % 700)" for k in range(5))
FILL_DECISIONS = f"""
SELECT 'd' || g, 1600000000000000 + g, 'u' || (g % {USERS}), 'user', 'pipeline', 'rel', 5,
    '[["' || {FILL_IDS} || '"],[1.0,1.0,1.0,1.0,1.0],[["popular"],["popular"],["popular"],'
    || '["popular"],["popular"]],[1.0,1.0,1.0,1.0,1.0]]' FROM nums
"""
FILL_DEAD_LETTERS = """
SELECT g, 'stream:events:' || g || '-0', 0, '[]', '{"item_id": "x"}' FROM nums
"""
PG_NUMS = "generate_series(1, {n}) AS nums(g)"
SQLITE_NUMS = "WITH RECURSIVE nums(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM nums WHERE g < {n})"
EVENT_INSERT = (
    "INSERT INTO events (event_id, user_id, session_id, item_id, event_type, value, ts, "
    "context, received_at, recommendation_id, position) "
)
LETTER_INSERT = "INSERT INTO dead_letters (received_at, source, record_index, errors, payload) "
DECISION_INSERT = (
    "INSERT INTO decisions (recommendation_id, served_at, unit, unit_kind, route, release, size, "
    "items) "
)
#: Tables filled above: a plan that reads one of them whole has missed its index.
FILLED = ("events", "dead_letters", "decisions")
#: The aliases the store's SQL gives them (``erasure_sql``, ``decisions.rows``).
ALIASES = {"events": "e", "decisions": "d"}


@pytest.fixture(params=BACKENDS)
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, EventStore]]:
    """A store of each backend with the rows above, one list served to ``s7``, the visitor
    linked to ``u7``; statistics fresh."""
    kind = request.param
    with open_backend(kind, tmp_path) as (store, _):
        _fill(kind, store)
        visit = decision(
            "visit",
            unit="s7",
            unit_kind="session",
            route="pipeline",
            release="rel",
            item_ids=["i1"],
            scores=[1.0],
            sources=[["popular"]],
        )
        store.append_decisions([visit])
        assert store.link_alias("s7", "u7", "session")[0] == "linked"
        _analyze(kind, store)
        yield kind, store


def _fill(kind: str, store: EventStore) -> None:
    nums = (PG_NUMS if kind == "postgres" else SQLITE_NUMS).format
    if kind == "postgres":
        # as ``append`` does: the month's partition first, the ids kept in ``event_ids`` too
        store._partitions_for(np.array([1_600_000_000_000_000]))  # type: ignore[attr-defined]
        with store._tx() as cur:  # type: ignore[attr-defined]
            cur.execute(
                f"{EVENT_INSERT}{FILL_EVENTS.replace('FROM nums', 'FROM ' + nums(n=EVENTS))}"
            )
            cur.execute("INSERT INTO event_ids SELECT event_id, ts FROM events")
            letters = FILL_DEAD_LETTERS.replace("FROM nums", "FROM " + nums(n=DEAD_LETTERS))
            cur.execute(f"{LETTER_INSERT}{letters}")
            lists = FILL_DECISIONS.replace("FROM nums", "FROM " + nums(n=LISTS))
            cur.execute(f"{DECISION_INSERT}{lists}")
        return
    with store._immediate() as conn:  # type: ignore[attr-defined]
        conn.execute(f"{EVENT_INSERT}{nums(n=EVENTS)} {FILL_EVENTS}")
        conn.execute(f"{LETTER_INSERT}{nums(n=DEAD_LETTERS)} {FILL_DEAD_LETTERS}")
        conn.execute(f"{DECISION_INSERT}{nums(n=LISTS)} {FILL_DECISIONS}")


def _analyze(kind: str, store: EventStore) -> None:
    if kind == "postgres":
        with store._tx() as cur:  # type: ignore[attr-defined]
            cur.execute("ANALYZE")
    else:
        store._conn().execute("ANALYZE")  # type: ignore[attr-defined]


#: Each partition's index (``store.partitions``) with the index on ``events`` it belongs to.
_INDEX_PARENTS = (
    "SELECT c.relname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_class p ON p.oid = i.inhparent WHERE c.relkind = 'i'"
)

_PARTITIONS = (
    "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass"
)


@contextmanager
def plans(kind: str, store: EventStore) -> Iterator[list[str]]:
    """The plans of the statements the store runs on this thread meanwhile, one text each."""
    found: list[str] = []
    conn = store._conn()  # type: ignore[attr-defined]
    if kind == "postgres":

        def notice(diagnostic: Any) -> None:
            found.append(diagnostic.message_primary or "")

        with store._tx() as cur:  # type: ignore[attr-defined]
            cur.execute("LOAD 'auto_explain'")
            for setting, value in (
                ("log_min_duration", "0"),
                ("log_level", "notice"),
                ("log_nested_statements", "on"),
            ):
                cur.execute(f"SET auto_explain.{setting} = {value}")
        conn.add_notice_handler(notice)
        try:
            yield found
        finally:
            conn.remove_notice_handler(notice)
            with store._tx() as cur:  # type: ignore[attr-defined]
                cur.execute("SET auto_explain.log_min_duration = -1")
                parents = dict(cur.execute(_INDEX_PARENTS).fetchall())
                empty = [
                    name
                    for (name,) in cur.execute(_PARTITIONS).fetchall()
                    if not cur.execute(f"SELECT EXISTS (SELECT FROM {name})").fetchone()[0]
                ]
        # a month's index bears a name PostgreSQL made up: named after the store's index too;
        # an empty partition (the default, next month's) is read by a sequential scan of nothing
        for n, plan in enumerate(found):
            plan = re.sub(r"\b\w+_idx\b", lambda m: f"{m[0]} ({parents.get(m[0])})", plan)
            for name in empty:
                plan = re.sub(rf"Seq Scan on {name}\b", f"Seq Scan on the empty {name}", plan)
            found[n] = plan
        return
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        yield found
    finally:
        conn.set_trace_callback(None)
    for sql in statements:
        if re.match(r"\s*(SELECT|DELETE|UPDATE|WITH)\b", sql, re.IGNORECASE):
            rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            found.append(sql + "\n" + "\n".join(row[3] for row in rows))


def full_reads(kind: str, found: list[str], tables: tuple[str, ...]) -> list[str]:
    """The plans among ``found`` that read one of ``tables`` whole."""
    if kind == "postgres":
        # ``events`` is read through its month's partition (``events_2020_09``)
        whole = re.compile(rf"Seq Scan on ({'|'.join(tables)})(_\d{{4}}_\d\d)?\b")
    else:  # "SCAN events", not "SEARCH events USING INDEX …" nor a covering-index "SCAN … USING";
        # SQLite names a table by its alias in the query (the store's SQL: e, i, d)
        names = [*tables, *(ALIASES[t] for t in tables if t in ALIASES)]
        whole = re.compile(rf"^\s*SCAN ({'|'.join(names)})\s*$", re.MULTILINE)
    return [plan for plan in found if whole.search(plan)]


def test_the_request_path_reads_through_indexes(filled: tuple[str, EventStore]) -> None:
    kind, store = filled
    calls: list[Callable[[], Any]] = [
        lambda: store.user_items("u5"),
        lambda: store.events_by_id(["e5", "e6"]),
        lambda: store.person_events("u5"),
        lambda: store.shows_of("u5", 0, 2**62),
        lambda: store.get_decision("d5"),
        lambda: store.dead_letter_sources(["stream:events:17-0", "stream:events:nope-0"]),
    ]
    with plans(kind, store) as found:
        results = [call() for call in calls]
    assert sorted(results[0]) == sorted({f"i{g % 700}" for g in range(5, EVENTS + 1, USERS)})
    assert results[5] == {"stream:events:17-0"}
    assert len(found) >= len(calls)
    assert full_reads(kind, found, FILLED) == []
    assert any("dead_letters_source" in plan for plan in found)
    # capping's per-request read: one range of (unit, served_at), its lists' items unpacked
    shows = [p for p in found if "page_view" in p and "decisions_unit_served" in p]
    assert len(shows) == 1, found
    # the time range is in the index's condition, not a filter over all of the unit's lists
    in_index = {
        "sqlite": r"decisions_unit_served \(unit=\? AND served_at>\? AND served_at<\?\)",
        "postgres": r"Index Cond: \(\(unit = [^)]*\) AND \(served_at >= [^)]*\) AND \(served_at <=",
    }
    assert re.search(in_index[kind], shows[0]), shows[0]
    assert sorted(r[1] for r in results[3]) == sorted(
        f"i{(5 * g + k) % 700}" for g in range(5, LISTS + 1, USERS) for k in range(5)
    )


def test_retention_and_reports_read_through_indexes(filled: tuple[str, EventStore]) -> None:
    """The store's other reads and deletes, each asked for a small part of a filled table
    (times from the fill's formulas): none reads the table whole. (``scan_decisions`` is left
    out: for a window narrower than a histogram bucket of ``served_at`` PostgreSQL estimates a
    bucket's rows and hash-joins all shown items; for the day-long windows reports ask for,
    that is the right plan.)"""
    kind, store = filled
    list_us, event_us = 1_600_000_000_000_000, 1_600_000_000_000_000 + 50 * 1_000_000
    calls: list[Callable[[], Any]] = [
        lambda: store.delete_events_before(from_micros(event_us)),  # e1 … e49
        lambda: store.delete_decisions_before(from_micros(list_us + 50)),  # d1 … d49
        lambda: store.dead_letter_summary(from_micros(DEAD_LETTERS - 10), 5),
        lambda: store.dead_letters(10, after_id=DEAD_LETTERS - 20),
        lambda: store.shown_to(["u5"], 0, 2**62),
        lambda: store.shown_in(["d5", "d6"]),
        lambda: store.events_per_minute(from_micros(event_us), from_micros(event_us + 10**9)),
        lambda: store.delete_user("u9"),
    ]
    with plans(kind, store) as found:
        results = [call() for call in calls]
    assert results[0] == 49 and results[1] == 49
    assert results[2][0] == 11 and len(results[3]) == 10
    # the summary's newest-first page walks the ids down from the newest and stops at its LIMIT
    # (received_at grows with id): SQLite's "SCAN" there reads 5 rows, not the table
    walked = "ORDER BY id DESC LIMIT"
    assert [p for p in full_reads(kind, found, FILLED) if walked not in p] == []


def test_erasing_a_person_with_a_visitor_reads_through_indexes(
    filled: tuple[str, EventStore],
) -> None:
    """Erasing u7 removes their events and lists, and the list served to their visitor s7,
    each found through an index (counts from the fill's formulas)."""
    kind, store = filled
    own = sum(1 for g in range(1, EVENTS + 1) if g % 10 and g % USERS == 7)
    visitor = sum(1 for g in range(1, EVENTS + 1) if g % 10 == 0 and g % SESSIONS == 7)
    with plans(kind, store) as found:
        counts = store.erase_person("u7", Mark("subject-u7", True, False, False))
    assert counts["events"] == own + visitor
    theirs = LISTS // USERS  # d7, d2007, …
    assert counts["decisions"] == theirs + 1 and counts["shown_items"] == theirs * 5 + 1
    assert full_reads(kind, found, ("events", "decisions")) == []


def test_an_anonymous_visitors_events_are_found_by_the_partial_index(
    filled: tuple[str, EventStore],
) -> None:
    """Sessions ≡ 0 mod 10 hold user-less events (g = 10, 4010, …): erasing the user a visitor
    session s10 is linked to removes them, found through ``events_visitor``."""
    kind, store = filled
    store.link_alias("s10", "u3", "session")
    expected = [f"e{g}" for g in range(10, EVENTS + 1, SESSIONS)]
    with plans(kind, store) as found:
        counts = store.erase_person("u3", Mark("subject-u3", True, False, False))
    own = sum(1 for g in range(1, EVENTS + 1) if g % 10 and g % USERS == 3)
    assert counts["events"] == own + len(expected)
    assert store.events_by_id(expected).empty
    assert any("events_visitor" in plan for plan in found)


def _indexes(kind: str, store: EventStore) -> set[str]:
    if kind == "postgres":
        with store._tx() as cur:  # type: ignore[attr-defined]
            return {r[0] for r in cur.execute("SELECT indexname FROM pg_indexes").fetchall()}
    conn: sqlite3.Connection = store._conn()  # type: ignore[attr-defined]
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


@pytest.mark.parametrize("index", ["events_visitor", "dead_letters_source"])
@pytest.mark.parametrize("kind", BACKENDS)
def test_an_older_database_gets_the_new_indexes_on_first_use(
    kind: str, index: str, tmp_path: Path
) -> None:
    """A database written before ``index`` existed (dropped here) has it once a store of this
    version opened it and answered one call."""
    with open_backend(kind, tmp_path) as (store, url):
        store.count_events()
        assert index in _indexes(kind, store)
        with store._tx() if kind == "postgres" else store._immediate() as cur:  # type: ignore[attr-defined]
            cur.execute(f"DROP INDEX {index}")
        store.close()
        if kind == "postgres":
            from recsmith.store.postgres import PostgresStore

            again: EventStore = PostgresStore(url)
        else:
            from recsmith.store.sqlite import SQLiteStore

            again = SQLiteStore(tmp_path / "store.sqlite")
        try:
            assert again.count_events() == 0
            assert index in _indexes(kind, again)
        finally:
            again.close()


# ---- what scan and the event reads return -------------------------------------------------


def _awkward_events() -> pd.DataFrame:
    """Events whose text and numbers a columnar read could get wrong: ids spelled like CSV's
    NULL markers, commas, quotes, a line break inside the context, non-ASCII, values that need
    all 17 digits, missing values, and list positions on some rows only."""
    rng = np.random.default_rng(7)
    # not negative: views and purchases take 0…1e9 (events.value_range)
    values = np.abs(rng.standard_normal(12)) * 10.0 ** rng.integers(-8, 9, 12)
    records: list[dict[str, Any]] = []
    for k in range(40):
        rec: dict[str, Any] = {
            "event_id": ["NA", "NULL", "None", "nan", 'q"uote', "com,ma", "ünï"][k]
            if k < 7
            else f"e{k:02d}",
            "item_id": f"item,{k % 5}" if k % 3 else f'it"em{k % 4}',
            "event_type": "purchase" if k % 4 == 0 else "view",
            "timestamp": f"2021-03-04T05:{k % 60:02d}:07.{k:06d}+00:00",
        }
        if k % 5:
            rec["user_id"] = "NULL" if k == 1 else f"u{k % 6}"
        else:
            rec["session_id"] = f"s{k}"
        if k < 12:
            rec["value"] = float(values[k])
        if k % 2:
            rec["recommendation_id"] = f"r{k}"
            if k % 4 == 1:
                rec["position"] = k % 9 + 1
        if k % 7 == 3:
            rec["context"] = {"page": "a,b\nc", "quote": 'he said "hi"', "k": k}
        records.append(rec)
    return frame(records)


def _plain(events: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain values, sorted by id, with every missing marker read as None and the
    context parsed (its JSON spelling is the store's)."""
    rows = []
    for rec in events.to_dict("records"):
        row = {
            k: (None if not isinstance(v, list | dict) and pd.isna(v) else v)
            for k, v in rec.items()
        }
        if row["context"] is not None:
            row["context"] = json.loads(row["context"])
        rows.append(row)
    return sorted(rows, key=lambda r: r["event_id"])


@pytest.mark.parametrize("kind", BACKENDS)
def test_scan_returns_every_value_as_stored(kind: str, tmp_path: Path) -> None:
    events = _awkward_events()
    with open_backend(kind, tmp_path) as (store, _):
        assert store.append(events).inserted == len(events)
        chunks = list(store.scan(batch_size=7))
        assert [len(c) for c in chunks] == [7] * 5 + [5]
        got = pd.concat(chunks, ignore_index=True)
        assert _plain(got) == _plain(events)
        order = sorted(zip(events["ts"], events["event_id"], strict=True))
        assert list(zip(got["ts"], got["event_id"], strict=True)) == order
        assert got["ts"].dtype == np.int64 and got["value"].dtype == np.float64
        bought = pd.concat(list(store.scan(types=["purchase"])), ignore_index=True)
        assert sorted(bought["event_id"]) == sorted(
            events["event_id"][events["event_type"] == "purchase"]
        )


@pytest.mark.parametrize("kind", BACKENDS)
def test_positions_come_back_as_ints_and_none(kind: str, tmp_path: Path) -> None:
    """A list position is an int or None, as validation makes it; read back from rows that mix
    both, the column was float64 (3.0 and NaN)."""
    events = _awkward_events()
    expected = dict(zip(events["event_id"], events["position"], strict=True))
    with open_backend(kind, tmp_path) as (store, _):
        store.append(events)
        for got in (
            pd.concat(list(store.scan()), ignore_index=True),
            store.events_by_id(list(expected)),
        ):
            assert got["position"].dtype == object
            found = dict(zip(got["event_id"], got["position"].tolist(), strict=True))
            assert found == expected
            assert all(p is None or type(p) is int for p in found.values())
