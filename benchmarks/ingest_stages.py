"""CPU of each stage of one group commit of single events, in-process, and this disk's fsync.

The load test (``ingest_load.py``) says how fast the whole server is; this says where a group's
time goes, with less noise: validation (``check_events``, and the column checks alone for
comparison: small groups take ``validate_small``), the reused-id check, the SQLite append
(stored-id lookup, sort, insert, COMMIT), and the whole group commit as the server runs it
(``ingest_event_batches`` with the server's attributor and online state: attribution of a group
of views once cost more than everything else together, unseen by the stage timings), each timed
by the thread's CPU clock (best of ``--repeat`` runs of ``--number`` groups), then fsync and
fdatasync of a rewritten 16 KiB block and one whole append, by the wall clock (the COMMIT's wait for
the disk is not CPU).

    .venv/bin/python benchmarks/ingest_stages.py --group 4
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/ingest_stages.py --group 4   # older code
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recsmith.config import DecisionSettings, EventSettings
from recsmith.decisions.attribution import live_attributor
from recsmith.decisions.log import DecisionLog
from recsmith.events.validate import validate_live_events
from recsmith.serving.online_state import LocalState
from recsmith.store.ingest import check_events, ingest_event_batches
from recsmith.store.reused_ids import reused_ids
from recsmith.store.sqlite import SQLiteStore


def cpu_us(call: Callable[[], object], number: int, repeat: int) -> float:
    """Best per-call CPU time of ``call`` (µs)."""
    runs = timeit.repeat(call, number=number, repeat=repeat, timer=time.thread_time)
    return round(min(runs) / number * 1e6, 1)


def wall_ms(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1e3
    return {
        "p50": round(float(np.median(ms)), 2),
        "mean": round(float(ms.mean()), 2),
        "p99": round(float(np.percentile(ms, 99)), 2),
    }


def server_commit(
    store: SQLiteStore, settings: EventSettings
) -> Callable[[list[dict[str, object]]], object]:
    """One group commit of single-event requests, wired as ``serving.app`` wires it (a decision log
    that is not started: nothing is pending, as on a server that serves no lists)."""
    decisions = DecisionSettings()
    state = LocalState()
    attributor = live_attributor(store, decisions, DecisionLog(store, decisions))
    on_stored: Callable[[Any], None] = state.push  # gets the (actor, item) pairs
    if importlib.util.find_spec("recsmith.events.latest") is None:  # older code (before
        # BENCHMARKS section 37) handed on_stored the frame
        from recsmith.serving.group_commit import latest_items  # type: ignore[attr-defined]

        on_stored = lambda frame: state.push(latest_items(frame))  # noqa: E731
    return lambda records: ingest_event_batches(
        store,
        [[record] for record in records],
        settings,
        source="ingest_stages",
        on_stored=on_stored,
        attributor=attributor,
        state=state,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", type=int, default=4, help="single events per group commit")
    parser.add_argument("--number", type=int, default=300, help="groups per timed run")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    settings = EventSettings()
    counter = itertools.count()

    def group() -> list[dict[str, object]]:
        k = next(counter)
        return [
            {"event_id": f"g{k}-{j}", "user_id": f"u{j}", "item_id": f"i{k % 50}"}
            | {"event_type": "view", "timestamp": time.time()}
            for j in range(args.group)
        ]

    with tempfile.TemporaryDirectory(prefix="ingest-stages-") as tmp:
        store = SQLiteStore(Path(tmp) / "events.sqlite")
        checked = check_events(group(), settings)
        assert not checked.rejected, checked.rejected
        # new events for every append: a frame appended twice would be all duplicates
        fresh = iter([check_events(group(), settings).valid for _ in range(args.number * 7)])
        n, r = args.number, args.repeat
        commit = server_commit(store, settings)
        cpu = {
            "check_events": cpu_us(lambda: check_events(group(), settings), n, r),
            # the column checks on the same group: what check_events cost before validate_small
            "column_checks": cpu_us(lambda: validate_live_events(group(), settings), n, r),
            "reused_ids": cpu_us(lambda: reused_ids(store, checked.valid), n, r),
            "append": cpu_us(lambda: store.append(next(fresh)), n, r),
            "whole_group": cpu_us(lambda: commit(group()), n, r),
        }
        appends = []
        for valid in fresh:
            started = time.perf_counter()
            store.append(valid)
            appends.append(time.perf_counter() - started)
        store.close()
        syncs: dict[str, list[float]] = {"fsync": [], "fdatasync": []}
        fd = os.open(Path(tmp) / "sync", os.O_RDWR | os.O_CREAT)
        for name, sync in (("fsync", os.fsync), ("fdatasync", os.fdatasync)):
            for k in range(args.number):
                os.pwrite(fd, b"x" * 16384, (k % 64) * 16384)
                started = time.perf_counter()
                sync(fd)
                syncs[name].append(time.perf_counter() - started)
        os.close(fd)
    report = {
        "group": args.group,
        "cpu_us_per_group": cpu,
        "append_wall_ms": wall_ms(appends),
        **{f"{name}_wall_ms": wall_ms(samples) for name, samples in syncs.items()},
        "loadavg_1m": os.getloadavg()[0],
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
