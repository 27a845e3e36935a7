"""PostgreSQL's ``events`` partitioned by month of event time, so retention drops whole months.

Why this shape: a partitioned table's unique constraints must include the partition key (``ts``),
yet events are deduplicated by ``event_id`` alone (a re-sent event whose time the server assigned
carries another ``ts``). So the uniqueness lives in ``event_ids`` (``event_id`` primary key and
its ``ts``), an ordinary table written in the same transaction as ``events`` (``claim_ids_sql``):
an id already there makes the event a no-op, exactly as the old primary key did, under the same row
locks. ``event_ids`` mirrors ``events`` row for row: a statement trigger removes the ids of every
event deleted through ``events`` (erasure, ``delete_user``), and ``purge_before`` removes those of
the months it drops. A month's partition is created before the first insert that needs it (and the
month after the newest with it, so a live stream's next month exists before midnight of the last
day); ``events_default`` takes whatever has no partition (a month dropped by another process while
this one still remembered it) and ``ensure_months`` moves such rows into their month when it
creates it.

Retention (``purge_before``) then detaches and drops every partition wholly before the cutoff —
no row-by-row DELETE, no dead tuples for VACUUM — and deletes rows only in the month the cutoff
falls in (and in the default partition). ``event_ids`` is not partitioned (it could not be unique
on ``event_id`` if it were), so its rows of those months are deleted by its ``ts`` index: narrow
rows, one index to leave dead entries in, against the events' row and four indexes.

A database written before partitioning has an ordinary ``events`` table: ``migrate_flat`` copies
it into the partitioned layout in the transaction that creates the layout, on the first
connection of a version with this module (``PostgresStore._create_tables``, under its schema
lock), and drops the old table only in that transaction: a failure leaves the old table whole.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from psycopg import sql

#: The partitioned table, its catch-all partition, the dedupe table and the trigger keeping it
#: in step with deletes: run before ``postgres._SCHEMA``'s index statements on ``events``.
EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (event_id TEXT COLLATE "C" NOT NULL, user_id TEXT,
    session_id TEXT, item_id TEXT NOT NULL, event_type TEXT NOT NULL, value DOUBLE PRECISION,
    ts BIGINT NOT NULL, context TEXT, received_at BIGINT NOT NULL, recommendation_id TEXT,
    position INTEGER) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS events_default PARTITION OF events DEFAULT;
CREATE TABLE IF NOT EXISTS event_ids (event_id TEXT COLLATE "C" PRIMARY KEY, ts BIGINT NOT NULL);
CREATE OR REPLACE FUNCTION events_forget_ids() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN DELETE FROM event_ids WHERE event_id IN (SELECT event_id FROM gone); RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER events_forget_ids AFTER DELETE ON events
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION events_forget_ids();
"""
#: Indexes that only speed reads up, dropped during a bulk import and built at its end
#: (``base.indexes_deferred``) besides ``base.DEFERRED_EVENT_INDEXES``: lookups of stored events
#: by id (erasure, ``events_by_id``) and retention's delete of a month's ids.
DEFERRED_INDEXES = (
    "CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id);"
    "CREATE INDEX IF NOT EXISTS event_ids_ts ON event_ids (ts);"
)
DEFERRED_INDEX_NAMES = ("events_event_id", "event_ids_ts")


def claim_ids_sql(stage: str) -> str:
    """Store the staged ids that are new, in id order (overlapping batches take row locks in one
    order and wait instead of deadlocking); returns them: exactly the ids this statement stored,
    whoever else is writing. Their events follow (``events_sql``) in the same transaction."""
    return (
        f"INSERT INTO event_ids (event_id, ts) SELECT event_id, ts FROM {stage} "
        "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )


def events_sql(stage: str, cols: str, *, every: bool) -> str:
    """Insert the staged events whose ids ``claim_ids_sql`` stored: all of them (``every``, the
    usual batch of new events: no join), or those named by the one parameter (a list)."""
    only = "" if every else " WHERE event_id = ANY(%s)"
    return f"INSERT INTO events ({cols}) SELECT {cols} FROM {stage}{only}"


def lock_key(schema: str | None) -> int:
    """The advisory lock serialising partition DDL (creation, purge) of one schema's tables."""
    name = f"recsmith-partitions:{schema or ''}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)


def months_of(ts_us: np.ndarray) -> list[int]:
    """The first microsecond (UTC) of each month these times fall in, and of the month after the
    newest, sorted: the partitions an append of them needs."""
    if len(ts_us) == 0:
        return []
    months = np.unique(np.asarray(ts_us, dtype=np.int64).astype("datetime64[us]").astype("M8[M]"))
    months = np.append(months, months[-1] + 1)
    return months.astype("datetime64[us]").astype(np.int64).tolist()


def month_end(first_us: int) -> int:
    return int(
        (np.datetime64(first_us, "us").astype("M8[M]") + 1).astype("M8[us]").astype(np.int64)
    )


def partition_name(first_us: int) -> str:
    month = str(np.datetime64(first_us, "us").astype("M8[M]")).replace("-", "_")
    return f"events_{month}"


_BOUNDS = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


def partitions(cur: Any) -> dict[int, tuple[str, int]]:
    """The monthly partitions of ``events``: first µs -> (table, end µs); the default left out."""
    found = cur.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass"
    ).fetchall()
    out: dict[int, tuple[str, int]] = {}
    for name, bound in found:
        if (match := _BOUNDS.search(bound)) is not None:
            out[int(match[1])] = (name, int(match[2]))
    return out


def ensure_months(cur: Any, months: Iterable[int], key: int) -> None:
    """Create the partitions of these months that do not exist, under the advisory lock ``key``
    (processes appending the same new month at once wait for one another). Rows of the month
    already in ``events_default`` move into it in the same transaction; then it is attached
    (which checks the default holds none of its rows), taking no lock that stops readers of
    ``events``."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
    have = partitions(cur)
    for first in months:
        if first in have:
            continue
        name, end = sql.Identifier(partition_name(first)), month_end(first)
        cur.execute(sql.SQL("CREATE TABLE {} (LIKE events INCLUDING DEFAULTS)").format(name))
        cur.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM events_default WHERE ts >= %s AND ts < %s "
                "RETURNING *) INSERT INTO {} SELECT * FROM moved"
            ).format(name),
            (first, end),
        )
        cur.execute(
            sql.SQL("ALTER TABLE events ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                name, sql.Literal(first), sql.Literal(end)
            )
        )


#: How long retention waits for the lock that dropping a partition takes on ``events`` before it
#: gives up (and runs again at its next tick): waiting longer would queue every read behind it.
DROP_LOCK_TIMEOUT = "5s"


def purge_before(cur: Any, cutoff_us: int, key: int) -> int:
    """Retention: every event before ``cutoff_us``, its id and its attributions, in the caller's
    transaction; returns how many events. Whole months are detached and dropped, last (the lock
    it takes on ``events`` is held for the shortest time)."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
    months = partitions(cur)
    cur.execute(
        "DELETE FROM attributions WHERE event_id IN (SELECT event_id FROM event_ids WHERE ts < %s)",
        (cutoff_us,),
    )
    removed = max(cur.execute("DELETE FROM event_ids WHERE ts < %s", (cutoff_us,)).rowcount, 0)
    partial = ["events_default"] + [n for f, (n, e) in months.items() if f < cutoff_us < e]
    for name in partial:
        query = sql.SQL("DELETE FROM {} WHERE ts < %s").format(sql.Identifier(name))
        cur.execute(query, (cutoff_us,))
    whole = [name for _, (name, end) in sorted(months.items()) if end <= cutoff_us]
    if whole:
        cur.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
    for name in whole:
        table = sql.Identifier(name)
        cur.execute(sql.SQL("ALTER TABLE events DETACH PARTITION {}").format(table))
        cur.execute(sql.SQL("DROP TABLE {}").format(table))
    return removed


#: The columns added to ``events`` after the first release: an old table gets them before the copy.
_LATE_COLUMNS = (
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS recommendation_id TEXT;"
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS position INTEGER;"
)
_FLAT = "events_unpartitioned"
#: The first µs of a row's month, in SQL (whole seconds first: no float rounding across a month's
#: last microsecond).
_MONTH_US = (
    "CAST(EXTRACT(EPOCH FROM date_trunc('month', to_timestamp(ts / 1000000) AT TIME ZONE 'UTC'))"
    " AS BIGINT) * 1000000"
)


def is_flat(cur: Any) -> bool:
    """True when ``events`` is an ordinary table (a database from before partitioning)."""
    row = cur.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('events')").fetchone()
    return row is not None and row[0] == "r"


def migrate_flat(cur: Any, create_schema: str, cols: str, key: int) -> int:
    """Move an ordinary ``events`` table into the partitioned layout in the caller's transaction:
    renamed aside (its indexes dropped: the new ones take their names), the layout created
    (``create_schema``), a partition per month it holds, its ids and rows copied, then dropped.
    Returns the rows moved."""
    cur.execute(_LATE_COLUMNS)
    cur.execute(f"ALTER TABLE events RENAME TO {_FLAT}")
    cur.execute("DROP INDEX IF EXISTS events_ts, events_user_item, events_visitor")
    cur.execute(create_schema)
    firsts = cur.execute(f"SELECT DISTINCT {_MONTH_US} FROM {_FLAT}").fetchall()
    ensure_months(cur, months_of(np.array([f[0] for f in firsts], dtype=np.int64)), key)
    cur.execute(f"INSERT INTO event_ids (event_id, ts) SELECT event_id, ts FROM {_FLAT}")
    moved = cur.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM {_FLAT}").rowcount
    cur.execute(f"DROP TABLE {_FLAT}")
    return max(moved, 0)
