"""The decision log's readers on a filled store, two checkouts in one process (issue #19, §88):
capping's per-request ``shows_of``, attribution's ``shown_to`` (the window rule) and
``shown_in``, before and after a served list became one row.

Each side writes the same ``--lists`` lists (ten items, ``--units`` units, ids random hex as
served ones) into a SQLite store of its own through its own ``append_decisions``; the other
checkout's store file is then copied and opened by this checkout, which moves it to this
layout (``store.packed_items``; the time the open took is printed). Every reader is asked the
same questions on the three stores (the other side's, this side's, the moved copy) and their
answers compared whole: frames exactly (values and dtypes), rows and ``Decision`` fields as
sorted lists. Then the timed reads alternate between the other side's store and this side's,
round by round (order flipped every round), process CPU per call, medians over rounds.
``--postgres URL`` does the same on PostgreSQL (schemas of their own, dropped afterwards), timed
by the wall clock (the work is the server's).

    cd benchmarks && PYTHONPATH=../src ../.venv/bin/python decision_readers_ab.py \\
        --against /tmp/base-declog/src
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
from answer_ab import renamed_copy
from calibration import calibration_line
from decision_log_cost import listed, rid

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def lists_for(record: ModuleType, count: int, units: int) -> list[Any]:
    """``count`` lists as ``record.decision`` builds them, a second apart, to ``units`` units."""
    out = []
    for k in range(count):
        kwargs = listed(k) | {"unit": f"u{k % units}", "served_at": T0 + timedelta(seconds=k)}
        out.append(record.decision(rid(k), **kwargs))
    return out


def answers(store: Any, ids: list[str], units: list[str], span_us: tuple[int, int]) -> dict:
    """Every reader's answer to the same questions, in comparable form."""
    lo, hi = span_us
    order = ["recommendation_id", "position"]
    return {
        "scan": store.scan_decisions(),
        "get": [dataclasses.astuple(store.get_decision(i)) for i in ids],
        "shown_in": store.shown_in(ids).sort_values(order, ignore_index=True),
        "shown_to": store.shown_to(units, lo, hi).sort_values(order, ignore_index=True),
        "shows_of": [sorted(store.shows_of(u, lo, hi)) for u in units],
        "person": [[dataclasses.astuple(d) for d in store.person_decisions(u)] for u in units],
    }


def differences(a: dict, b: dict) -> list[str]:
    """The readers whose answers differ between ``a`` and ``b``."""
    out = []
    for key, value in a.items():
        if isinstance(value, pd.DataFrame):
            try:
                pd.testing.assert_frame_equal(value, b[key], check_exact=True)
            except AssertionError:
                out.append(key)
        elif value != b[key]:
            out.append(key)
    return out


def timed(call: Callable[[], Any], times: int, clock: Callable[[], float]) -> float:
    """µs per call of ``call`` by ``clock``, over ``times`` calls."""
    started = clock()
    for _ in range(times):
        call()
    return (clock() - started) / times * 1e6


def write(store: Any, lists: list[Any], name: str) -> None:
    started = time.perf_counter()
    for at in range(0, len(lists), 1000):
        store.append_decisions(lists[at : at + 1000])
    print(f"{name}: {len(lists)} lists written in {time.perf_counter() - started:.1f} s")


def build_stores(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """The other side's store and this side's, each written by its own code, and a copy of the
    other side's opened (so moved) by this checkout: SQLite files under ``root``, or schemas of
    ``--postgres`` (each written, the moved one twice over: a schema is not copied)."""
    modules = {
        name: (
            __import__(f"{pkg}.store.sqlite", fromlist=["x"]),
            __import__(f"{pkg}.store.postgres", fromlist=["x"]),
            __import__(f"{pkg}.decisions.record", fromlist=["x"]),
        )
        for name, pkg in (("against", "recsmith_base"), ("this", "recsmith"))
    }

    def opened(side: str, name: str) -> Any:
        sqlite, postgres, _ = modules[side]
        if args.postgres:
            return postgres.PostgresStore(f"{args.postgres}?schema=bench_{name}_{os.getpid()}")
        (root / name).mkdir(exist_ok=True)
        return sqlite.SQLiteStore(root / name / "events.db")

    stores = {}
    for name in ("against", "this"):
        stores[name] = opened(name, name)
        write(stores[name], lists_for(modules[name][2], args.lists, args.units), name)
    if args.postgres:
        old = opened("against", "moved")
        write(old, lists_for(modules["against"][2], args.lists, args.units), "moved (as against)")
        old.close()
    else:
        stores["against"].close()  # copied whole, then opened again
        (root / "moved").mkdir()
        shutil.copy(root / "against" / "events.db", root / "moved" / "events.db")
        stores["against"] = opened("against", "against")
    started = time.perf_counter()
    stores["moved"] = opened("this", "moved")
    stores["moved"].count_decisions()  # PostgreSQL moves on the first connection
    print(f"moved: opened by this side (and moved) in {time.perf_counter() - started:.1f} s")
    if not args.postgres:
        sizes = {
            n: sum(f.stat().st_size for f in (root / n).glob("events.db*")) / 1e6 for n in stores
        }
        print("file MB: " + ", ".join(f"{n} {s:.1f}" for n, s in sizes.items()))
    return stores


def drop_schemas(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("against", "this", "moved"):
            conn.execute(f"DROP SCHEMA IF EXISTS bench_{name}_{os.getpid()} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--lists", type=int, default=50_000)
    parser.add_argument("--units", type=int, default=5_000, help="so ~lists/units lists a unit")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=300, help="calls per round and reader")
    parser.add_argument("--postgres", help="a PostgreSQL URL: schemas there instead of SQLite")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        renamed_copy(args.against, root)
        sys.path.insert(0, tmp)
        stores = build_stores(args, root)
        pick = random.Random(0)
        ids = [rid(k) for k in pick.sample(range(args.lists), 200)]
        units = [f"u{u}" for u in pick.sample(range(args.units), 50)]
        t0_us = int(T0.timestamp() * 1e6)
        span = (t0_us, t0_us + args.lists * 1_000_000)
        found = {n: answers(s, ids, units, span) for n, s in stores.items()}
        for n in ("this", "moved"):
            differ = differences(found["against"], found[n])
            print(f"{n} answers as against: {differ or 'every reader'}")

        unit_names = [f"u{u}" for u in range(args.units)]
        window = (t0_us + args.lists * 500_000, span[1])  # the later half: ~lists/units/2 lists
        readers = {
            "shows_of (1 unit, all its lists)": lambda s: s.shows_of(
                pick.choice(unit_names), *span
            ),
            "shows_of (1 unit, later half)": lambda s: s.shows_of(pick.choice(unit_names), *window),
            "shown_to (50 units, later half)": lambda s: s.shown_to(
                pick.sample(unit_names, 50), *window
            ),
            "shown_in (100 lists)": lambda s: s.shown_in(
                [rid(k) for k in pick.sample(range(args.lists), 100)]
            ),
            "get_decision": lambda s: s.get_decision(rid(pick.randrange(args.lists))),
        }
        # SQLite works in this process: its CPU; PostgreSQL in the server: the wall clock
        clock = time.perf_counter if args.postgres else time.process_time
        gc.collect()
        gc.freeze()
        spent: dict[str, dict[str, list[float]]] = {r: {"against": [], "this": []} for r in readers}
        for r in range(args.rounds + 1):  # round 0 warms up
            for name in ("against", "this")[:: 1 if r % 2 == 0 else -1]:
                for reader, call in readers.items():
                    cpu = timed(lambda call=call, s=stores[name]: call(s), args.calls, clock)
                    if r:
                        spent[reader][name].append(cpu)
        print(
            f"reader                              against µs  this µs  ratio  (median "
            f"{'wall clock' if args.postgres else 'CPU'} a call, {args.rounds} rounds of "
            f"{args.calls})"
        )
        for reader, by in spent.items():
            a, t = statistics.median(by["against"]), statistics.median(by["this"])
            print(f"{reader:34} {a:11.1f} {t:8.1f} {t / a:6.3f}")
        for store in stores.values():
            store.close()
        if args.postgres:
            drop_schemas(args.postgres)


if __name__ == "__main__":
    main()
