"""PostgreSQL ``events`` partitioned by month (``store.partitions``) against the unpartitioned
table it replaced, in one run: import, the request path's ``user_items``, retention of a month
(dropping a partition against ``DELETE``), VACUUM after it, and moving the old table into the
new layout (what a database written before sees on first use).

    .venv/bin/python benchmarks/pg_partitions.py --events 2000000 \\
        --url postgresql://postgres@127.0.0.1:5432/test

Two schemas of its own (``pgpart_<events>``, ``pgflat_<events>``; dropped at the end unless
``--keep``) get the same synthetic events (``pg_scale.synthetic_chunk``: 90 days of event time,
here from 2024-01-01, so January is a whole month): the partitioned one through
``PostgresStore.append`` inside ``bulk_load``, the flat one through ``append`` as it was before
(COPY into a temporary table, ``INSERT … ON CONFLICT (event_id) DO NOTHING`` into a table with
``event_id`` as primary key; the same three read indexes dropped during the import and built at
its end), chunk by chunk alternately, so both see the same load. 5 % of events (those from a
served list) get an attribution, which retention deletes with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(__file__))
import pg_scale
from calibration import calibration_line
from pg_scale import percentiles, synthetic_chunk

from recsmith.events.schema import EVENT_COLUMNS
from recsmith.store import base
from recsmith.store.copy_text import copy_rows
from recsmith.store.postgres import PostgresStore

CHUNK = 200_000
JAN_2024_US = base.micros(datetime(2024, 1, 1, tzinfo=UTC))
FEB_2024_US = base.micros(datetime(2024, 2, 1, tzinfo=UTC))
MID_FEB_2024_US = base.micros(datetime(2024, 2, 15, tzinfo=UTC))
COLS = f"{', '.join(EVENT_COLUMNS)}, received_at"
#: The table and indexes as the store created them before partitioning.
FLAT_SCHEMA = """
CREATE TABLE events (event_id TEXT COLLATE "C" PRIMARY KEY, user_id TEXT,
    session_id TEXT, item_id TEXT NOT NULL, event_type TEXT NOT NULL, value DOUBLE PRECISION,
    ts BIGINT NOT NULL, context TEXT, received_at BIGINT NOT NULL, recommendation_id TEXT,
    position INTEGER);
CREATE TABLE attributions (event_id TEXT PRIMARY KEY, recommendation_id TEXT NOT NULL,
    position INTEGER, rule TEXT NOT NULL, event_type TEXT NOT NULL, value DOUBLE PRECISION,
    ts BIGINT NOT NULL);
"""
FLAT_INDEXES = """
CREATE INDEX IF NOT EXISTS events_ts ON events (ts, event_id);
CREATE INDEX IF NOT EXISTS events_user_item ON events (user_id, item_id);
CREATE INDEX IF NOT EXISTS events_visitor ON events (session_id) WHERE user_id IS NULL;
"""
#: ``append`` before partitioning.
FLAT_APPEND = (
    f"INSERT INTO events ({COLS}) SELECT {COLS} FROM recsmith_incoming "
    "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)
#: ``delete_events_before`` before partitioning (``erasure_sql.events_before_sql``).
FLAT_PURGE = (
    "DELETE FROM attributions WHERE event_id IN (SELECT event_id FROM events WHERE ts < %s)",
    "DELETE FROM events WHERE ts < %s",
)
ATTRIBUTE = (
    "INSERT INTO attributions SELECT event_id, recommendation_id, position, 'last', event_type, "
    "value, ts FROM events WHERE recommendation_id IS NOT NULL"
)


def flat_append(conn: psycopg.Connection[Any], chunk: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS recsmith_incoming "
            "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY recsmith_incoming ({COLS}) FROM STDIN") as copy:
            copy.write(copy_rows(chunk, time.time_ns() // 1000))
        cur.execute(FLAT_APPEND)
        cur.fetchall()
    conn.commit()


def timed(step: Any) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def purge_partitioned(store: PostgresStore, cutoff: int) -> tuple[float, int]:
    started = time.perf_counter()
    removed = store.delete_events_before(base.from_micros(cutoff))
    return time.perf_counter() - started, removed


def purge_flat(flat: psycopg.Connection[Any], cutoff: int) -> tuple[float, int]:
    started = time.perf_counter()
    with flat.cursor() as cur:
        cur.execute(FLAT_PURGE[0], (cutoff,))
        removed = cur.execute(FLAT_PURGE[1], (cutoff,)).rowcount
    flat.commit()
    return time.perf_counter() - started, removed


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def run(args: argparse.Namespace, store: PostgresStore, flat: psycopg.Connection[Any]) -> None:
    pg_scale.START_US = JAN_2024_US  # 90 days from 1 January: January is a whole partition
    rng = np.random.default_rng(33)
    new_s = old_s = 0.0
    with store.bulk_load():
        for first in range(0, args.events, CHUNK):
            chunk = synthetic_chunk(first, min(CHUNK, args.events - first), args.events, rng)
            new_s += timed(lambda c=chunk: store.append(c))
            old_s += timed(lambda c=chunk: flat_append(flat, c))
        started = time.perf_counter()
    new_ix = time.perf_counter() - started  # the deferred indexes, built on leaving bulk_load
    old_ix = timed(lambda: (flat.execute(FLAT_INDEXES), flat.commit()))
    n = args.events
    print(
        f"import {n:,} events (chunks alternating, indexes built at the end): partitioned "
        f"{new_s + new_ix:.1f} s ({n / (new_s + new_ix):,.0f} events/s; appends {new_s:.1f} s, "
        f"indexes {new_ix:.1f} s), unpartitioned {old_s + old_ix:.1f} s "
        f"({n / (old_s + old_ix):,.0f} events/s; appends {old_s:.1f} s, indexes {old_ix:.1f} s)"
        f" {load()}"
    )
    with store._tx() as cur:
        cur.execute(ATTRIBUTE)
        cur.execute("ANALYZE")
        size = cur.execute(
            "SELECT pg_size_pretty(SUM(pg_total_relation_size(inhrelid))) FROM pg_inherits "
            "WHERE inhparent = 'events'::regclass"
        ).fetchone()[0]
        ids = cur.execute("SELECT pg_size_pretty(pg_total_relation_size('event_ids'))")
        print(f"partitioned: events {size} + event_ids {ids.fetchone()[0]} (with indexes)")
    flat.execute(ATTRIBUTE)
    flat.execute("ANALYZE")
    flat_size = flat.execute("SELECT pg_size_pretty(pg_total_relation_size('events'))")
    print(f"unpartitioned: events {flat_size.fetchone()[0]} (with indexes)")
    flat.commit()

    users = [f"u{u}" for u in rng.integers(0, n // 20, 2 * args.calls).tolist()]
    new_ms, old_ms = [], []
    for user in users:  # alternating, one short transaction each, as the store reads
        t0 = time.perf_counter()
        store.user_items(user)
        t1 = time.perf_counter()
        flat.execute("SELECT DISTINCT item_id FROM events WHERE user_id = %s", (user,)).fetchall()
        flat.commit()
        t2 = time.perf_counter()
        new_ms.append((t1 - t0) * 1e3)
        old_ms.append((t2 - t1) * 1e3)
    print(f"user_items ({len(users)} random users) partitioned: {percentiles(new_ms)}")
    print(f"user_items ({len(users)} random users) unpartitioned: {percentiles(old_ms)} {load()}")

    january = int(flat.execute("SELECT COUNT(*) FROM events WHERE ts < %s", (FEB_2024_US,))
                  .fetchone()[0])  # fmt: skip
    flat.commit()
    for label, cutoff in (("January (a whole month)", FEB_2024_US), ("to 15 Feb", MID_FEB_2024_US)):
        new, new_removed = purge_partitioned(store, cutoff)
        old, old_removed = purge_flat(flat, cutoff)
        print(
            f"retention {label}: partitioned {new:.2f} s, DELETE {old:.2f} s; events removed "
            f"{new_removed:,} / {old_removed:,} {load()}"
        )
    print(f"(January held {january:,} of {n:,} events)")
    store.close()
    with psycopg.connect(store._conninfo, **{**store._options, "autocommit": True}) as conn:
        new = timed(lambda: conn.execute("VACUUM event_ids, events, attributions"))
    flat.autocommit = True
    old = timed(lambda: flat.execute("VACUUM events, attributions"))
    print(f"VACUUM after: partitioned {new:.2f} s, unpartitioned {old:.2f} s {load()}")

    rows = int(flat.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    mover = PostgresStore(args.flat_url)
    took = timed(mover.count_events)
    moved = mover.count_events()
    mover.close()
    print(
        f"first use of the unpartitioned table (moved into partitions): {took:.1f} s for "
        f"{rows:,} events ({rows / took:,.0f} events/s); count after {moved:,} {load()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--calls", type=int, default=1000, help="user_items calls per layout")
    parser.add_argument("--keep", action="store_true", help="keep the filled schemas")
    args = parser.parse_args()
    print(calibration_line())
    schemas = (f"pgpart_{args.events}", f"pgflat_{args.events}")
    joiner = "&" if "?" in args.url else "?"
    args.flat_url = f"{args.url}{joiner}schema={schemas[1]}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        print(conn.execute("SELECT version()").fetchone()[0])
        for name in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schemas[1])))
    store = PostgresStore(f"{args.url}{joiner}schema={schemas[0]}")
    flat = psycopg.connect(args.url, options=f"-c search_path={schemas[1]}")
    try:
        flat.execute(FLAT_SCHEMA)
        flat.commit()
        run(args, store, flat)
    finally:
        store.close()
        flat.close()
        if not args.keep:
            with psycopg.connect(args.url, autocommit=True) as conn:
                for name in schemas:
                    drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                    conn.execute(drop.format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
