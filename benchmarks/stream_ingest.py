"""Sustained streaming ingest: events/s that one ``recsmith consume`` stores from a backlog, into
SQLite and into PostgreSQL, from Redis Streams and from NATS JetStream (issue #18).

The stream is filled first (not timed), then one consumer drains it with the command's own loop
(``StreamConsumer.run(until_drained=True)``, in this process so that the process start is not
counted): a backlog is consumed as fast as the consumer can, which is the rate it sustains when
producers outpace it. Reported: wall-clock events/s, and CPU seconds per 10,000 messages of this
process (the consumer: parsing, validation, the store client; not the database's or the broker's
own CPU), the steadier figure on a shared machine. Each run must end with every good event stored
once, every bad record dead-lettered, and the group drained, or the script fails.

    PYTHONPATH=src .venv/bin/python benchmarks/stream_ingest.py --events 50000 \
        --postgres postgresql://postgres@127.0.0.1:5432/test

Events: ids ``e<n>``, 20,000 users and 5,000 items drawn Zipf-like (seeded), views and
purchases with timestamps over the last 30 days, 1 % refused (an unknown event type). PostgreSQL
runs use a schema of their own, dropped afterwards; SQLite a file in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from calibration import calibration_line
from psycopg import sql

from recsmith.config import EventSettings, StoreSettings
from recsmith.store.open import open_store
from recsmith.streaming.consumer import StreamConsumer
from recsmith.testing.streams import ScratchStream


def messages(n: int, seed: int = 0) -> tuple[list[tuple[str, bytes]], int]:
    """The stream's messages and how many of them are good events."""
    rng = np.random.default_rng(seed)
    users = np.minimum(rng.zipf(1.3, n), 20_000)
    items = np.minimum(rng.zipf(1.2, n), 5_000)
    purchase = rng.random(n) < 0.05
    bad = rng.random(n) < 0.01
    now = time.time()
    stamps = now - rng.random(n) * 30 * 86_400
    out = []
    for k in range(n):
        kind = "teleport" if bad[k] else "purchase" if purchase[k] else "view"
        record = {
            "event_id": f"e{k}",
            "user_id": f"u{users[k]}",
            "item_id": f"i{items[k]}",
            "event_type": kind,
            "timestamp": round(float(stamps[k]), 3),
        }
        out.append(("event", json.dumps(record).encode()))
    return out, int(n - bad.sum())


def one_run(
    broker_kind: str, broker_url: str, store_url: str, n: int, batch: int
) -> dict[str, object]:
    """Fill a scratch stream, drain it into the store at ``store_url``; the figures."""
    stream = ScratchStream(broker_kind, broker_url, prefix="bench")
    try:
        body, good = messages(n)
        stream.publish(body)
        store = open_store(store_url, StoreSettings())
        broker = stream.broker("bench", claim_idle_s=60)
        consumer = StreamConsumer(broker, store, EventSettings(), batch_size=batch, wait_s=0.5)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        totals = consumer.run(threading.Event(), until_drained=True)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        lag = broker.lag()
        stored, letters = store.count_events(), len(store.dead_letters(n))
        broker.close()
        store.close()
    finally:
        stream.delete()
    checks = {
        "stored == good": stored == good == totals.events_stored,
        "dead letters == bad": letters == n - good == totals.rejected,
        "acked == messages": totals.acked == n,
        "drained": lag.drained,
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise SystemExit(f"{broker_kind} -> {store_url}: failed {failed} ({totals})")
    return {
        "events_per_s": round(n / wall),
        "cpu_s_per_10k": round(cpu / n * 10_000, 3),
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[500])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--brokers", nargs="+", default=["redis", "nats"])
    parser.add_argument("--postgres", help="PostgreSQL URL (a scratch schema is made in it)")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    print("| broker | store | batch | events/s | CPU s / 10k msgs | wall s |")
    print("|---|---|---:|---:|---:|---:|")
    for kind in args.brokers:
        url = args.redis if kind == "redis" else args.nats
        for batch in args.batch:
            with tempfile.TemporaryDirectory() as tmp:
                sqlite = f"sqlite:///{Path(tmp) / 'store.sqlite'}"
                row = one_run(kind, url, sqlite, args.events, batch)
            print(f"| {kind} | sqlite | {batch} | {row['events_per_s']:,} | "
                  f"{row['cpu_s_per_10k']} | {row['wall_s']} |", flush=True)  # fmt: skip
            if args.postgres:
                schema = f"bench_{uuid.uuid4().hex[:12]}"
                join = "&" if "?" in args.postgres else "?"
                try:
                    row = one_run(
                        kind, url, f"{args.postgres}{join}schema={schema}", args.events, batch
                    )
                finally:
                    with psycopg.connect(args.postgres, autocommit=True) as conn:
                        drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                        conn.execute(drop.format(sql.Identifier(schema)))
                print(f"| {kind} | postgresql | {batch} | {row['events_per_s']:,} | "
                      f"{row['cpu_s_per_10k']} | {row['wall_s']} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
