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
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line

from recsmith.store.open import open_store


def import_once(fmt: str, path: str, url: str, cwd: Path) -> tuple[dict[str, int], float, float]:
    """Counts printed by ``recsmith import --json``, and the wall time and CPU time (user +
    system, all its threads; not the PostgreSQL server's) of the whole process. CPU time is the
    steadier figure on a shared machine, wall time the one a user waits."""
    cmd = [sys.executable, "-m", "recsmith", "-q", "import", path, "--format", fmt, "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([*cmd, "--store", url], capture_output=True, text=True, cwd=cwd)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if out.returncode != 0:
        sys.exit(f"import failed ({out.returncode}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds, cpu


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
    fresh, fresh_s, fresh_cpu = import_once(fmt, path, url, cwd)
    again, again_s, again_cpu = import_once(fmt, path, url, cwd)
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
    return {
        "event_records": records,
        "accepted": fresh["accepted"],
        "fresh_s": round(fresh_s, 2),
        "fresh_events_per_s": round(records / fresh_s),
        "fresh_cpu_s": round(fresh_cpu, 2),
        "reimport_s": round(again_s, 2),
        "reimport_events_per_s": round(records / again_s),
        "reimport_cpu_s": round(again_cpu, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="movielens", help="recsmith import --format")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--path", help="file or directory to import")
    source.add_argument("--synthetic", type=int, help="import N generated events (format events)")
    parser.add_argument("--postgres", help="PostgreSQL URL (a schema is created in it)")
    args = parser.parse_args(argv)

    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="import-speed-") as tmp:
        root = Path(tmp)
        if args.synthetic:
            args.path, args.format = str(root / "events.csv"), "events"
            synthetic_events(Path(args.path), args.synthetic)
        result = measure(args.format, args.path, f"sqlite:///{root / 'events.sqlite'}", root)
        print("result", json.dumps({"store": "sqlite", **result}), flush=True)
        if args.postgres:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            sep = "&" if "?" in args.postgres else "?"
            try:
                result = measure(
                    args.format, args.path, f"{args.postgres}{sep}schema={schema}", root
                )
            finally:
                drop_schema(args.postgres, schema)
            print("result", json.dumps({"store": "postgresql", **result}), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    raise SystemExit(main())
