"""PostgreSQL's ``events`` partitioned by month (``store.partitions``): retention drops whole
months, ``event_ids`` keeps ingest idempotent across months, a time-bounded read touches only its
months, and a database with the old unpartitioned table is moved into the new layout whole.

The oracles are the catalogue (``pg_inherits``, ``to_regclass``), the events the test itself
appended (counted in Python), and for the migration an ``md5`` of every row taken before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from psycopg import sql

from recsmith.store import base
from recsmith.testing.backends import postgres_url_or_skip
from recsmith.testing.contracts import event, frame, ingest, scan_all

if TYPE_CHECKING:
    from recsmith.store.postgres import PostgresStore


def _url(server: str, schema: str) -> str:
    return f"{server}{'&' if '?' in server else '?'}schema={schema}"


@pytest.fixture
def server() -> str:
    return postgres_url_or_skip()


@pytest.fixture
def schema(server: str) -> Iterator[str]:
    import psycopg

    name = f"t_{uuid.uuid4().hex}"
    yield name
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _open(server: str, schema: str) -> PostgresStore:
    from recsmith.store.postgres import PostgresStore

    return PostgresStore(_url(server, schema))


@pytest.fixture
def store(server: str, schema: str) -> Iterator[PostgresStore]:
    s = _open(server, schema)
    yield s
    s.close()


def _on(day: str, eid: str, user: str = "u1") -> dict[str, Any]:
    return event(f"i-{eid}", eid, user=user, timestamp=f"{day}T12:00:00Z")


def _partitions(store: PostgresStore) -> list[str]:
    rows = store._rows(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass"
    )
    return sorted(r[0] for r in rows)


def _one(store: PostgresStore, query: str) -> Any:
    return store._rows(query)[0][0]


#: Ten events a month, January to March 2024.
DAYS = [f"2024-{m:02d}-{d:02d}" for m in (1, 2, 3) for d in range(1, 29, 3)]


def test_retention_drops_the_months_before_the_cutoff_and_deletes_only_in_its_month(
    store: PostgresStore,
) -> None:
    ingest(store, [_on(day, f"e{n}") for n, day in enumerate(DAYS)])
    with store._tx() as cur:  # an attribution of a January event and one of a March event
        for eid in ("e0", f"e{len(DAYS) - 1}"):
            cur.execute(
                "INSERT INTO attributions SELECT event_id, 'r', 1, 'last', event_type, value, ts "
                "FROM events WHERE event_id = %s",
                (eid,),
            )
    assert _partitions(store) == [
        "events_2024_01",
        "events_2024_02",
        "events_2024_03",
        "events_2024_04",
        "events_default",
    ]
    cutoff = datetime(2024, 2, 15, tzinfo=UTC)
    older = [n for n, day in enumerate(DAYS) if day < "2024-02-15"]

    removed = store.delete_events_before(cutoff)

    assert removed == len(older)
    # January went whole: its table is gone, not emptied; February lost only its first half
    assert _partitions(store) == [
        "events_2024_02",
        "events_2024_03",
        "events_2024_04",
        "events_default",
    ]
    assert _one(store, "SELECT to_regclass('events_2024_01') IS NULL") is True
    kept = {f"e{n}" for n in range(len(DAYS)) if n not in older}
    assert set(scan_all(store)["event_id"]) == kept
    assert {r[0] for r in store._rows("SELECT event_id FROM event_ids")} == kept
    assert store._rows("SELECT event_id FROM attributions") == [(f"e{len(DAYS) - 1}",)]
    # a purged id is new again, and its month is made again for it
    assert ingest(store, [_on("2024-01-04", "e1")]).accepted == 1
    assert "events_2024_01" in _partitions(store)


def test_the_same_event_id_with_another_time_is_stored_once(store: PostgresStore) -> None:
    """A re-sent event whose time the server assigned comes back with another ``ts``, here in
    another month (another partition): still a duplicate for the store, and the first stays."""
    first = store.append(frame([_on("2024-01-10", "same")]))
    again = store.append(frame([_on("2024-03-20", "same"), _on("2024-03-20", "other")]))
    assert (first.inserted, again.inserted, again.duplicates) == (1, 1, 1)
    assert again.new.tolist() == [False, True]
    rows = store.events_by_id(["same"])
    assert rows["ts"].tolist() == [base.micros(datetime(2024, 1, 10, 12, tzinfo=UTC))]
    assert store.count_events() == 2 == _one(store, "SELECT COUNT(*) FROM event_ids")


def test_a_read_bounded_in_time_touches_only_its_months(store: PostgresStore) -> None:
    ingest(store, [_on(day, f"e{n}") for n, day in enumerate(DAYS)])
    lo, hi = (base.micros(datetime(2024, 2, d, tzinfo=UTC)) for d in (3, 20))
    query = base.events_per_minute_query("%s")
    plan = "\n".join(r[0] for r in store._rows(f"EXPLAIN {query}", (lo, hi)))
    assert "events_2024_02" in plan
    for other in ("events_2024_01", "events_2024_03", "events_2024_04", "events_default"):
        assert other not in plan
    inside = sum(1 for day in DAYS if "2024-02-03" <= day < "2024-02-20")
    assert sum(n for _, n in store.events_per_minute(*map(base.from_micros, (lo, hi)))) == inside


def test_erasure_forgets_the_ids_of_the_events_it_deletes(store: PostgresStore) -> None:
    """``event_ids`` mirrors ``events`` through every delete: an erased person's event sent
    again is stored again, as before partitioning."""
    from recsmith.privacy.marks import Mark

    ingest(store, [_on("2024-01-10", "a", "u1"), _on("2024-02-10", "b", "u1")])
    ingest(store, [_on("2024-02-11", "c", "u2")])
    counts = store.erase_person("u1", Mark("subject-u1", True, False, False))
    assert counts["events"] == 2
    assert [r[0] for r in store._rows("SELECT event_id FROM event_ids")] == ["c"]
    store.delete_user("u2")
    assert _one(store, "SELECT COUNT(*) FROM event_ids") == 0
    assert ingest(store, [_on("2024-01-10", "a", "u3")]).accepted == 1


def test_a_month_dropped_under_another_process_still_takes_its_events(
    server: str, schema: str, store: PostgresStore
) -> None:
    """A process that remembers a month another one purged inserts into ``events_default``;
    the process that makes the month again moves those rows into it."""
    ingest(store, [_on("2024-01-10", "a")])
    other = _open(server, schema)
    try:
        other.delete_events_before(datetime(2024, 3, 1, tzinfo=UTC))
        assert ingest(store, [_on("2024-01-11", "b")]).accepted == 1  # no partition: default
        assert _one(store, "SELECT COUNT(*) FROM events_default") == 1
        assert ingest(other, [_on("2024-01-12", "c")]).accepted == 1  # makes January again
    finally:
        other.close()
    assert _one(store, "SELECT COUNT(*) FROM events_default") == 0
    assert _one(store, "SELECT COUNT(*) FROM events_2024_01") == 2
    assert sorted(scan_all(store)["event_id"]) == ["b", "c"]


# ---- a database written before partitioning --------------------------------------------------

#: ``events`` as versions before partitioning created it (the newer columns, added since the
#: first release, left out: the migration adds them too), with its indexes.
_FLAT = """
CREATE TABLE events (event_id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT, session_id TEXT,
    item_id TEXT NOT NULL, event_type TEXT NOT NULL, value DOUBLE PRECISION,
    ts BIGINT NOT NULL, context TEXT, received_at BIGINT NOT NULL);
CREATE INDEX events_ts ON events (ts, event_id);
CREATE INDEX events_user_item ON events (user_id, item_id);
CREATE INDEX events_visitor ON events (session_id) WHERE user_id IS NULL;
INSERT INTO events SELECT 'e' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'u' || (g % 50) END,
    's' || (g % 90), 'i' || (g % 40), 'view', CASE WHEN g % 3 = 0 THEN g END,
    1700000000000000 + g * CAST(3600000000 AS BIGINT), NULL, g FROM generate_series(1, 5000) g;
"""
#: Every row, in one order: equal before and after means no row lost, added or changed.
_DIGEST = (
    "SELECT COUNT(*), md5(string_agg(concat_ws('|', event_id, user_id, session_id, item_id, "
    "event_type, value, ts, context, received_at), ',' ORDER BY event_id)) FROM events"
)


def test_an_unpartitioned_events_table_is_moved_whole_on_first_use(
    server: str, schema: str
) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(_FLAT)
        before = conn.execute(_DIGEST).fetchone()
        months = conn.execute(
            "SELECT COUNT(DISTINCT date_trunc('month', to_timestamp(ts / 1000000) "
            "AT TIME ZONE 'UTC')) FROM events"
        ).fetchone()[0]
    store = _open(server, schema)
    try:
        assert store.count_events() == 5000
        assert store._rows(_DIGEST)[0] == before
        assert _one(store, "SELECT relkind FROM pg_class WHERE oid = 'events'::regclass") == "p"
        assert _one(store, "SELECT COUNT(*) FROM event_ids") == 5000
        assert _one(store, "SELECT COUNT(*) FROM events_default") == 0
        assert len(_partitions(store)) == months + 2  # and the month after, and the default
        assert _one(store, "SELECT to_regclass('events_unpartitioned') IS NULL") is True
        # idempotency carried over: a stored id is a duplicate; the added columns are there
        again = store.append(frame([_on("2024-05-01", "e17"), _on("2024-05-01", "new")]))
        assert (again.inserted, again.duplicates) == (1, 1)
        assert store.events_by_id(["e17"])["item_id"].tolist() == ["i17"]
    finally:
        store.close()


def test_retention_held_off_by_a_reader_gives_up_and_changes_nothing(
    server: str, schema: str, store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping a month locks ``events`` against readers; a long read (a training scan) holding
    it off makes retention give up after ``DROP_LOCK_TIMEOUT`` rather than queue every read
    behind it, and the whole purge rolls back: no event and no id lost."""
    import psycopg

    from recsmith.errors import StoreUnavailable
    from recsmith.store import partitions

    monkeypatch.setattr(partitions, "DROP_LOCK_TIMEOUT", "200ms")
    ingest(store, [_on(day, f"e{n}") for n, day in enumerate(DAYS)])
    with psycopg.connect(server, options=f"-c search_path={schema}") as reader:
        reader.execute("SELECT COUNT(*) FROM events").fetchone()  # its transaction stays open
        with pytest.raises(StoreUnavailable, match="lock"):
            store.delete_events_before(datetime(2024, 2, 15, tzinfo=UTC))
    assert store.count_events() == len(DAYS) == _one(store, "SELECT COUNT(*) FROM event_ids")
    assert "events_2024_01" in _partitions(store)
    assert store.delete_events_before(datetime(2024, 2, 15, tzinfo=UTC)) > 0  # reader gone
