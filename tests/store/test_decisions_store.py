"""The decision-log methods of the EventStore contract, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from recsmith.decisions.record import Decision, decision
from recsmith.store.base import EventStore
from recsmith.testing.backends import postgres_url_or_skip
from recsmith.testing.contracts import column, event, ingest, scan_all

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T0_US = 1_772_366_400_123_456


def shown(rid: str, unit: str | None, items: list[str], minutes: float = 0.0) -> Decision:
    return decision(
        rid,
        unit=unit,
        unit_kind="user" if unit else "none",
        route="recommendations" if unit else "popular",
        release="r1",
        item_ids=items,
        scores=[1.0 / (n + 1) for n in range(len(items))],
        sources=[("als", "recent") if n == 0 else ("popular",) for n in range(len(items))],
        served_at=T0 + timedelta(minutes=minutes),
        variant="treatment" if unit == "u2" else None,
        experiment="exp" if unit == "u2" else None,
    )


def test_a_decision_reads_back_as_it_was_recorded(store: EventStore) -> None:
    d = shown("r-a", "u1", ["i1", "i2", "i3"])
    assert store.append_decisions([d, shown("r-b", "u2", ["i9"])]) == 2
    assert store.get_decision("r-a") == d
    assert (
        store.get_decision("r-b") is not None and store.get_decision("r-b").variant == "treatment"
    )
    assert store.get_decision("unknown") is None


def test_appending_the_same_decisions_again_stores_them_once(store: EventStore) -> None:
    batch = [shown("r-a", "u1", ["i1", "i2"]), shown("r-b", None, ["i3"])]
    store.append_decisions(batch)
    store.append_decisions(batch)  # a writer retrying a batch whose commit it did not see
    rows = store.scan_decisions()
    assert rows["recommendation_id"].tolist() == ["r-a", "r-a", "r-b"]


def test_scan_is_one_row_per_shown_item_in_the_time_range(store: EventStore) -> None:
    store.append_decisions(
        [
            shown("r-early", "u1", ["x"], minutes=-1),
            shown("r-a", "u1", ["i1", "i2"]),
            shown("r-empty", "u3", []),
            shown("r-late", "u1", ["y"], minutes=10),
        ]
    )
    rows = store.scan_decisions(T0, T0 + timedelta(minutes=10))  # until is exclusive
    assert rows["recommendation_id"].tolist() == ["r-a", "r-a", "r-empty"]
    assert rows["position"].tolist()[:2] == [1, 2] and pd.isna(rows["position"].iloc[2])
    assert rows["item_id"].tolist()[:2] == ["i1", "i2"]
    assert rows["sources"].tolist()[:2] == ["als|recent", "popular"]
    assert rows["score"].tolist()[:2] == [1.0, 0.5]
    assert rows["propensity"].tolist()[:2] == [1.0, 1.0]
    assert rows["served_at"].iloc[0] == pd.Timestamp(T0)
    assert str(rows["served_at"].dtype) == "datetime64[ns, UTC]"


def test_lookups_for_attribution(store: EventStore) -> None:
    store.append_decisions(
        [shown("r-a", "u1", ["i1", "i2"]), shown("r-b", "u1", ["i2"], minutes=30)]
    )
    found = store.shown_in(["r-b", "nope"])
    assert found[["recommendation_id", "position", "item_id"]].values.tolist() == [["r-b", 1, "i2"]]
    assert found["release"].tolist() == ["r1"]
    window = store.shown_to(["u1", "u9"], T0_US, T0_US + 29 * 60_000_000)
    assert sorted(window["recommendation_id"]) == ["r-a", "r-a"]
    assert store.shown_to(["u9"], 0, 2**62).empty


def test_shows_of_is_capping_s_plain_read_of_one_unit_s_window(store: EventStore) -> None:
    in_view = decision(
        "r-pv",
        unit="u1",
        unit_kind="user",
        route="recommendations",
        release="r1",
        item_ids=["i3"],
        scores=[1.0],
        sources=[("als",)],
        served_at=T0 + timedelta(minutes=5),
        page_view="pv-1",
    )
    store.append_decisions(
        [
            shown("r-a", "u1", ["i1", "i2"]),
            in_view,
            shown("r-late", "u1", ["i4"], minutes=30),  # one µs past the window's end
            shown("r-other", "u9", ["i1"]),
        ]
    )
    rows = store.shows_of("u1", T0_US, T0_US + 30 * 60_000_000 - 1)
    assert sorted(rows) == [
        ("r-a", "i1", T0_US, None),
        ("r-a", "i2", T0_US, None),
        ("r-pv", "i3", T0_US + 5 * 60_000_000, "pv-1"),
    ]
    assert store.shows_of("u1", T0_US + 1, T0_US + 5 * 60_000_000) == [
        ("r-pv", "i3", T0_US + 5 * 60_000_000, "pv-1")
    ]
    assert store.shows_of("nobody", 0, 2**62) == []


def test_retention_deletes_decisions_and_old_attributions(store: EventStore) -> None:
    store.append_decisions([shown("r-old", "u1", ["i1"], -60), shown("r-new", "u1", ["i1"])])
    store.append_attributions(
        pd.DataFrame(
            {
                "event_id": ["e-old", "e-new"],
                "recommendation_id": ["r-old", "r-new"],
                "position": [1, 1],
                "rule": ["explicit", "window"],
                "event_type": ["click", "click"],
                "value": [None, None],
                "ts": [T0_US - 3_000_000_000, T0_US + 1],
            }
        )
    )
    assert store.delete_decisions_before(T0 - timedelta(minutes=1)) == 1
    assert store.get_decision("r-old") is None and store.get_decision("r-new") is not None
    assert store.scan_attributions()["event_id"].tolist() == ["e-new"]


def test_attributions_are_kept_once_per_event(store: EventStore) -> None:
    first = pd.DataFrame(
        {
            "event_id": ["e1"],
            "recommendation_id": ["r-a"],
            "position": [2],
            "rule": ["explicit"],
            "event_type": ["purchase"],
            "value": [19.5],
            "ts": [T0_US],
        }
    )
    store.append_attributions(first)
    store.append_attributions(first.assign(recommendation_id="r-b", rule="window"))
    got = store.scan_attributions()
    assert got[["event_id", "recommendation_id", "rule"]].values.tolist() == [
        ["e1", "r-a", "explicit"]
    ]
    assert got["value"].tolist() == [19.5] and got["position"].tolist() == [2]


def test_events_keep_their_recommendation_id_and_position(store: EventStore) -> None:
    ingest(store, [event("i1", "e1", recommendation_id="r-a", position=2), event("i2", "e2")])
    rows = scan_all(store)
    assert column(rows, "recommendation_id") == ["r-a", None]
    assert column(rows, "position") == [2, None]


def test_erasing_a_user_erases_their_decisions(store: EventStore) -> None:
    store.append_decisions([shown("r-a", "u1", ["i1"]), shown("r-b", "u2", ["i1"])])
    store.delete_user("u1")
    assert store.get_decision("r-a") is None and store.get_decision("r-b") is not None
    assert store.shown_to(["u1"], 0, 2**62).empty


# ---- stores written by an older version -----------------------------------------------------

_OLD_EVENTS = (
    "CREATE TABLE events (event_id TEXT PRIMARY KEY, user_id TEXT, session_id TEXT, "
    "item_id TEXT NOT NULL, event_type TEXT NOT NULL, value {real}, ts {int} NOT NULL, "
    "context TEXT, received_at {int} NOT NULL)"
)
_OLD_ROW = "INSERT INTO events VALUES ('old', 'u1', NULL, 'i1', 'view', NULL, 5, NULL, 5)"


def test_an_older_sqlite_store_gains_the_event_columns(tmp_path: Path) -> None:
    from recsmith.store.sqlite import SQLiteStore

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(_OLD_EVENTS.format(real="REAL", int="INTEGER"))
        conn.execute(_OLD_ROW)
    store = SQLiteStore(path)
    try:
        rows = scan_all(store)
        assert rows["event_id"].tolist() == ["old"] and column(rows, "recommendation_id") == [None]
        ingest(store, [event("i2", "new", recommendation_id="r-a", position=1)])
        assert column(scan_all(store), "position") == [None, 1]
    finally:
        store.close()


def test_an_older_postgres_store_gains_the_event_columns() -> None:
    import uuid

    import psycopg
    from psycopg import sql

    from recsmith.store.postgres import PostgresStore

    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(_OLD_EVENTS.format(real="DOUBLE PRECISION", int="BIGINT"))
        conn.execute(_OLD_ROW)
    store = PostgresStore(f"{base}?schema={schema}")
    try:
        rows = scan_all(store)
        assert rows["event_id"].tolist() == ["old"] and column(rows, "position") == [None]
        store.append_decisions([shown("r-a", "u1", ["i1"])])
        assert store.get_decision("r-a") is not None
    finally:
        store.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
