"""CPU of a re-import's reused-id check (``store.reused_ids.reused_ids``) per chunk, both sides.

``import_speed.py --stages`` times the check in the importing thread only; part of its cost is
PostgreSQL's (the lookup, and any comparison done in SQL), so this script also reads the server
backend's CPU (``/proc/<pid>/stat`` of the connection's backend: PostgreSQL on this machine).
A store is filled with the ``--synthetic`` events of ``import_speed.py``, then each chunk is
checked again, as a re-import does: once unchanged (all re-sends), once with every 100th event's
item changed (so 1,000 of each 100,000 must be found). Whichever recsmith ``PYTHONPATH`` provides
is measured, so running it on two checkouts in turn compares them.

    PYTHONPATH=src .venv/bin/python benchmarks/reused_ids_cpu.py --synthetic 300000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

from calibration import calibration_line
from import_speed import drop_schema, synthetic_events

from recsmith.config import Settings
from recsmith.events.importers.base import read_source
from recsmith.store.ingest import check_events
from recsmith.store.open import open_store
from recsmith.store.reused_ids import reused_ids

TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(store: object) -> float:
    """CPU seconds (user + system) of this thread's PostgreSQL backend so far; 0 for SQLite."""
    if not hasattr(store, "_rows"):
        return 0.0
    pid = store._rows("SELECT pg_backend_pid()")[0][0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(path: str, url: str) -> dict[str, float]:
    settings = Settings()
    chunks = [
        check_events(c.rows, settings.events, offset=c.offset).valid
        for c in read_source("events", path).events
    ]
    store = open_store(url, settings.store)
    try:
        for chunk in chunks:
            store.append(chunk)
        out: dict[str, float] = {}
        for label, every in (("resent", 0), ("changed", 100)):
            cpu = server = wall = 0.0
            found = 0
            for chunk in chunks:
                sent = chunk.copy()
                if every:
                    sent.loc[sent.index[::every], "item_id"] = "changed"
                server_before = backend_cpu(store)
                start_cpu, start = time.thread_time(), time.perf_counter()
                found += int(reused_ids(store, sent).sum())
                cpu += time.thread_time() - start_cpu
                wall += time.perf_counter() - start
                server += backend_cpu(store) - server_before
            per = 100_000 / sum(map(len, chunks))
            out[f"{label}_found"] = found
            out[f"{label}_client_cpu_s_per_100k"] = round(cpu * per, 3)
            out[f"{label}_server_cpu_s_per_100k"] = round(server * per, 3)
            out[f"{label}_wall_s_per_100k"] = round(wall * per, 3)
        return out
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=int, default=300_000, help="events to generate")
    parser.add_argument("--postgres", help="PostgreSQL URL (a schema is created in it)")
    args = parser.parse_args(argv)
    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="reused-ids-") as tmp:
        path = Path(tmp) / "events.csv"
        synthetic_events(path, args.synthetic)
        result = measure(str(path), f"sqlite:///{Path(tmp) / 'events.sqlite'}")
        print(json.dumps({"store": "sqlite", **result}), flush=True)
        if args.postgres:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            sep = "&" if "?" in args.postgres else "?"
            try:
                result = measure(str(path), f"{args.postgres}{sep}schema={schema}")
            finally:
                drop_schema(args.postgres, schema)
            print(json.dumps({"store": "postgresql", **result}), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    raise SystemExit(main())
