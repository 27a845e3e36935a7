"""Speed of `recsmith import`: a fresh import, then a re-import of the same data (all duplicates),
into SQLite and PostgreSQL.

Each import is a real `recsmith import` process (what users run), timed end to end; events/s
counts the file's event records. The re-import must report every event as a duplicate, and the
store must hold exactly the accepted events, or the run fails. The first line is the machine
calibration line (``calibration.py``).

    .venv/bin/python benchmarks/import_speed.py --format movielens \
        --path /work/shared/datasets/movielens-latest-small \
        --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/import_speed.py --synthetic 1200000 \
        --postgres postgresql://postgres@127.0.0.1:5432/test

PostgreSQL runs also report the server's CPU (``ServerCpu``: its backends for the URL's
database, from ``/proc``). ``--stages`` adds, per store, the CPU of each stage timed in-process
(``stage_cpu``).
``--synthetic N`` writes a CSV of N view/purchase/add_to_cart events without event ids (so every
id is a content hash, as for most exports) for 60,000 users and 40,000 Zipf-popular items, seeded:
the scale of issue #11's measurement, which the shared real datasets (about 100,000 events each)
do not reach.

The import runs whichever recsmith ``PYTHONPATH`` (or the venv) provides, so the same script
measures an older checkout. PostgreSQL runs use a schema of their own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line

from recsmith.store.open import open_store


class ServerCpu:
    """CPU seconds (user + system) of the PostgreSQL backends serving ``url``'s database while
    it runs, read from ``/proc`` (the server must run on this machine): ``pg_stat_activity`` is
    polled every 0.2 s and each backend's last reading kept, so a connection that lives under
    0.2 s can be missed. Counts every session on that database (use one of its own); the WAL
    writer and checkpointer are not counted. None for SQLite or when ``/proc`` is unreadable."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seconds: float | None = None
        self._stop = threading.Event()
        self._ticks: dict[int, int] = {}
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> ServerCpu:
        if self.url.startswith("postgresql"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
            self.seconds = sum(self._ticks.values()) / os.sysconf("SC_CLK_TCK")

    def _poll(self) -> None:
        import psycopg

        base = self.url.split("?", 1)[0]
        with psycopg.connect(base, autocommit=True) as conn:
            while not self._stop.wait(0.2):
                pids = conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchall()
                for (pid,) in pids:
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self._ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime


def import_once(
    fmt: str, path: str, url: str, cwd: Path
) -> tuple[dict[str, int], float, float, float | None]:
    """Counts printed by ``recsmith import --json``, and the wall time and CPU time (user +
    system, all its threads) of the whole process, and the PostgreSQL server's (``ServerCpu``).
    CPU time is the steadier figure on a shared machine, wall time the one a user waits."""
    cmd = [sys.executable, "-m", "recsmith", "-q", "import", path, "--format", fmt, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with ServerCpu(url) as server:
        out = subprocess.run([*cmd, "--store", url], capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        sys.exit(f"import failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds, cpu, server.seconds


def stage_cpu(fmt: str, path: str, url: str) -> dict[str, dict[str, float]]:
    """CPU seconds (``time.thread_time``) of each stage of a fresh import and a re-import, run
    in this process one stage after the other: reading, validation, the reused-id check, the
    append, and (where the code has ``bulk_load``) the index build at the end. The import
    command overlaps validation with storing, so these add up to more than its wall time;
    they are the steadier figures when other jobs share the machine. Catalogue records are
    not included."""
    from contextlib import nullcontext

    from recsmith.config import Settings
    from recsmith.events.importers.base import read_source
    from recsmith.store.ingest import check_events
    from recsmith.store.reused_ids import reused_ids

    settings = Settings()
    store = open_store(url, settings.store)
    out: dict[str, dict[str, float]] = {}
    try:
        for run in ("fresh", "reimport"):
            cpu = dict.fromkeys(("read", "validate", "reused_ids", "append", "index_build"), 0.0)
            bulk = store.bulk_load() if hasattr(store, "bulk_load") else nullcontext()
            chunks = iter(read_source(fmt, path).events)
            bulk.__enter__()
            while True:
                start = time.thread_time()
                chunk = next(chunks, None)
                cpu["read"] += time.thread_time() - start
                if chunk is None:
                    break
                start = time.thread_time()
                checked = check_events(chunk.rows, settings.events, offset=chunk.offset)
                cpu["validate"] += time.thread_time() - start
                start = time.thread_time()
                # an older checkout has no ``content_ids`` (every row compared whole)
                marks = getattr(checked, "content_ids", None)
                reused_ids(
                    store, checked.valid, checked.stamped, *(() if marks is None else (marks,))
                )
                cpu["reused_ids"] += time.thread_time() - start
                start = time.thread_time()
                store.append(checked.valid)
                cpu["append"] += time.thread_time() - start
            start = time.thread_time()
            bulk.__exit__(None, None, None)
            cpu["index_build"] = time.thread_time() - start
            out[run] = {k: round(v, 2) for k, v in cpu.items()}
    finally:
        store.close()
    return out


def synthetic_events(path: Path, n: int) -> None:
    rng = np.random.default_rng(1)
    users = pd.Series(rng.integers(0, 60_000, n)).astype(str)
    items = pd.Series(rng.zipf(1.3, n) % 40_000).astype(str)
    kinds = rng.choice(["view", "purchase", "add_to_cart"], n, p=[0.8, 0.1, 0.1])
    start = np.sort(rng.integers(0, 30_000_000, n))
    frame = pd.DataFrame(
        {
            "user_id": "u" + users,
            "item_id": "i" + items,
            "event_type": kinds,
            "timestamp": 1.6e9 + start,
        }
    )
    frame.to_csv(path, index=False)


def drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def measure(fmt: str, path: str, url: str, cwd: Path) -> dict[str, object]:
    fresh, fresh_s, fresh_cpu, fresh_server = import_once(fmt, path, url, cwd)
    again, again_s, again_cpu, again_server = import_once(fmt, path, url, cwd)
    records = fresh["accepted"] + fresh["duplicates"] + fresh["rejected"]
    store = open_store(url)
    try:
        stored = store.count_events()
    finally:
        store.close()
    if again["accepted"] != 0 or again["duplicates"] != fresh["accepted"] + fresh["duplicates"]:
        sys.exit(f"re-import was not all duplicates: {again} after {fresh}")
    if stored != fresh["accepted"]:
        sys.exit(f"the store holds {stored} events, the import accepted {fresh['accepted']}")
    server = {}
    if fresh_server is not None and again_server is not None:
        server = {"fresh_server_cpu_s": round(fresh_server, 2)}
        server["reimport_server_cpu_s"] = round(again_server, 2)
    return {
        "event_records": records,
        "accepted": fresh["accepted"],
        "fresh_s": round(fresh_s, 2),
        "fresh_events_per_s": round(records / fresh_s),
        "fresh_cpu_s": round(fresh_cpu, 2),
        "reimport_s": round(again_s, 2),
        "reimport_events_per_s": round(records / again_s),
        "reimport_cpu_s": round(again_cpu, 2),
        **server,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="movielens", help="recsmith import --format")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--path", help="file or directory to import")
    source.add_argument("--synthetic", type=int, help="import N generated events (format events)")
    parser.add_argument("--postgres", help="PostgreSQL URL (a schema is created in it)")
    parser.add_argument(
        "--stages", action="store_true", help="also time each stage in-process (stage_cpu)"
    )
    args = parser.parse_args(argv)

    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="import-speed-") as tmp:
        root = Path(tmp)
        if args.synthetic:
            args.path, args.format = str(root / "events.csv"), "events"
            synthetic_events(Path(args.path), args.synthetic)
        result = measure(args.format, args.path, f"sqlite:///{root / 'events.sqlite'}", root)
        print("result", json.dumps({"store": "sqlite", **result}), flush=True)
        if args.stages:
            stages = stage_cpu(args.format, args.path, f"sqlite:///{root / 'stages.sqlite'}")
            print("stages", json.dumps({"store": "sqlite", **stages}), flush=True)
        if args.postgres:
            sep = "&" if "?" in args.postgres else "?"
            for what in ("result", "stages") if args.stages else ("result",):
                schema = f"bench_{uuid.uuid4().hex[:12]}"
                url = f"{args.postgres}{sep}schema={schema}"
                try:
                    found = (
                        measure(args.format, args.path, url, root)
                        if what == "result"
                        else stage_cpu(args.format, args.path, url)
                    )
                finally:
                    drop_schema(args.postgres, schema)
                print(what, json.dumps({"store": "postgresql", **found}), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    raise SystemExit(main())
