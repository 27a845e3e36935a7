"""What the experiment report's serving guardrails read from the store, on SQLite and PostgreSQL
alike: each decision's latency, and requests and failures per variant and minute."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recsmith.decisions.record import Decision, decision
from recsmith.store.base import EventStore
from recsmith.testing.backends import postgres_url_or_skip

T0 = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
T0_MINUTE = int(T0.timestamp()) // 60


def timed(
    rid: str, latency_ms: float | None, variant: str = "control", minutes: float = 0.0
) -> Decision:
    return decision(
        rid,
        unit=f"u-{rid}",
        unit_kind="user",
        route="recommendations",
        release="r1",
        item_ids=["i1", "i2"],
        scores=[2.0, 1.0],
        sources=[("als",), ("popular",)],
        experiment="exp",
        variant=variant,
        served_at=T0 + timedelta(minutes=minutes),
        latency_ms=latency_ms,
    )


def test_latencies_are_stored_and_read_back_exactly(store: EventStore) -> None:
    kept = [
        timed("r-a", 12.345678901234),
        timed("r-b", None),
        timed("r-c", 0.000123, "treatment"),
        timed("r-late", 99.5, minutes=10),
    ]
    other = decision(
        "r-x",
        unit="u9",
        unit_kind="user",
        route="recommendations",
        release="r1",
        item_ids=[],
        scores=[],
        sources=[],
        experiment="another",
        variant="control",
        served_at=T0,
        latency_ms=7.0,
    )
    store.append_decisions([*kept, other])
    for d in kept:
        assert store.get_decision(d.recommendation_id) == d  # latency_ms included, bit for bit
    assert store.get_decision("r-b").latency_ms is None
    # the export's rows carry it (NaN where not timed)
    shown = store.scan_decisions().drop_duplicates("recommendation_id")
    by_id = dict(zip(shown["recommendation_id"], shown["latency_ms"], strict=True))
    assert by_id["r-a"] == 12.345678901234 and by_id["r-c"] == 0.000123
    assert by_id["r-x"] == 7.0 and by_id["r-b"] != by_id["r-b"]  # NaN
    # the report's read: this experiment, timed decisions only, until exclusive
    got = store.decision_latencies("exp", T0, T0 + timedelta(minutes=10))
    assert sorted(zip(got["variant"], got["latency_ms"], strict=True)) == [
        ("control", 12.345678901234),
        ("treatment", 0.000123),
    ]
    assert store.decision_latencies("nothing").empty


def test_request_counts_add_up_per_variant_and_minute(store: EventStore) -> None:
    store.add_request_counts(
        [
            ("exp", "control", T0_MINUTE, 10, 1),
            ("exp", "treatment", T0_MINUTE, 7, 3),
            ("exp", "control", T0_MINUTE + 5, 4, 0),
            ("other", "control", T0_MINUTE, 1000, 1000),
        ]
    )
    # a second process (or the next flush) adds to the same minute
    store.add_request_counts([("exp", "control", T0_MINUTE, 5, 2)])
    got = store.request_counts("exp")
    assert got.values.tolist() == [["control", 19, 3], ["treatment", 7, 3]]
    # the minutes overlapping [since, until): T0's minute only
    first = store.request_counts("exp", T0, T0 + timedelta(minutes=1))
    assert first.values.tolist() == [["control", 15, 3], ["treatment", 7, 3]]
    assert store.request_counts("nothing").empty
    # retention drops the minutes before the cutoff
    store.delete_decisions_before(T0 + timedelta(minutes=1))
    assert store.request_counts("exp").values.tolist() == [["control", 4, 0]]


# ---- stores written before latency_ms -------------------------------------------------------

#: ``decisions`` as the version before this one created it (no ``latency_ms``).
_OLD_DECISIONS = (
    "CREATE TABLE decisions (recommendation_id TEXT PRIMARY KEY, served_at {int} NOT NULL, "
    "unit TEXT, unit_kind TEXT NOT NULL, route TEXT NOT NULL, placement TEXT, "
    "release TEXT NOT NULL, experiment TEXT, variant TEXT, size INTEGER NOT NULL)"
)
_OLD_ITEMS = (
    "CREATE TABLE decision_items (recommendation_id TEXT NOT NULL, position INTEGER NOT NULL, "
    "item_id TEXT NOT NULL, score DOUBLE PRECISION NOT NULL, sources TEXT NOT NULL, "
    "propensity DOUBLE PRECISION NOT NULL, unit TEXT, served_at BIGINT NOT NULL, "
    "PRIMARY KEY (recommendation_id, position))"
)
_OLD_ROW = (
    "INSERT INTO decisions VALUES ('r-old', 1772366430000000, 'u1', 'user', 'recommendations', "
    "NULL, 'r1', 'exp', 'control', 0)"
)


def _reads_old_and_new(store: EventStore) -> None:
    old = store.get_decision("r-old")
    assert old is not None and old.latency_ms is None and old.variant == "control"
    store.append_decisions([timed("r-new", 3.25)])
    assert store.get_decision("r-new").latency_ms == 3.25
    store.add_request_counts([("exp", "control", T0_MINUTE, 2, 1)])
    assert store.request_counts("exp").values.tolist() == [["control", 2, 1]]


def test_an_older_sqlite_store_gains_latency_and_request_counts(tmp_path: Path) -> None:
    from recsmith.store.sqlite import SQLiteStore

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(_OLD_DECISIONS.format(int="INTEGER"))
        conn.execute(_OLD_ROW)
    store = SQLiteStore(path)
    try:
        _reads_old_and_new(store)
    finally:
        store.close()


def test_an_older_postgres_store_gains_latency_and_request_counts() -> None:
    import psycopg
    from psycopg import sql

    from recsmith.store.postgres import PostgresStore

    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(_OLD_DECISIONS.format(int="BIGINT"))
        conn.execute(_OLD_ROW)
        # the marker the previous version checked: its schema was complete
        conn.execute(_OLD_ITEMS)
        conn.execute(
            "CREATE INDEX decision_items_unit ON decision_items (unit, item_id, served_at)"
        )
    store = PostgresStore(f"{base}?schema={schema}")
    try:
        _reads_old_and_new(store)
    finally:
        store.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
