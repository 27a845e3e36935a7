"""What recording one served list costs in CPU, request side and writer side, two checkouts in one
process (issue #19: the decision log's writer was 14 % of a serving worker's samples, §38).

Each side gets its own SQLite store (as ``recsmith serve`` makes it: WAL, ``synchronous=FULL``)
and its own ``DecisionLog``; a round records ``--per-round`` lists the way the recommendation
route does (``decisions.served.record_served``: ten items, their scores and sources, a user, a
latency) and then flushes them the way the writer thread does (``DecisionLog.flush``). The two
checkouts alternate round by round (the order flipped every round) so both see the same moments
of a shared machine. Process CPU time per decision, medians over rounds; every stored list is
read back at the end and compared between the two sides.

    .venv/bin/python benchmarks/decision_log_cost.py --against /tmp/old-decisioncost/src

``--composition`` instead splits this checkout's writer step into building the rows, the INSERTs
and the COMMIT, as served (``synchronous=FULL``, every index), with ``synchronous=NORMAL`` and
without the ``(unit, served_at)`` index: what the writer's CPU is made of. (Until §88 a list was
a row per item under two more indexes; §56 measured that layout against one row a list.)

    .venv/bin/python benchmarks/decision_log_cost.py --composition

``--python-side`` (with ``--against``) times each side's ``append_decisions`` with SQLite taken
out (its transaction hands out a stand-in that takes the values): building the rows and laying
out what the statements bind, the part of the writer's step that is Python (§56).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line

ITEMS = 10
#: Source sets as a pipeline's items carry them: a few distinct lists, repeated.
SOURCES = (["als"], ["als", "cooc"], ["popular"], ["cooc", "session"])


class Side:
    """One checkout's store, log and metrics, recording the same lists as the other side."""

    def __init__(self, pkg: str, folder: Path) -> None:
        mod = __import__
        self.served: ModuleType = mod(f"{pkg}.decisions.served", fromlist=["x"])
        log_mod = mod(f"{pkg}.decisions.log", fromlist=["x"])
        config = mod(f"{pkg}.config", fromlist=["x"])
        sqlite = mod(f"{pkg}.store.sqlite", fromlist=["x"])
        metrics = mod(f"{pkg}.serving.metrics", fromlist=["x"])
        self.decision = mod(f"{pkg}.decisions.record", fromlist=["x"]).decision
        self.store = sqlite.SQLiteStore(folder / "events.db")
        self.log = log_mod.DecisionLog(self.store, config.DecisionSettings(buffer_size=1_000_000))
        self.metrics = metrics.Metrics.create()

    def record(self, lists: list[tuple[str, dict[str, Any]]]) -> float:
        """CPU seconds to record ``lists`` (id and what the route passes) as the route does."""
        record_served, log, metrics = self.served.record_served, self.log, self.metrics
        started = time.process_time()
        for recommendation_id, kwargs in lists:
            record_served(log, metrics, recommendation_id, **kwargs)
        return time.process_time() - started

    def flush(self) -> float:
        """CPU seconds of the writer's step storing what was recorded."""
        started = time.process_time()
        self.log.flush()
        return time.process_time() - started

    def python_side(self, lists: list[tuple[str, dict[str, Any]]]) -> tuple[float, Binder]:
        """CPU seconds of the store's ``append_decisions`` for ``lists`` with SQLite taken out:
        its transaction hands out a ``Binder``, which takes the statements and their values."""
        decisions = [self.decision(i, **kwargs) for i, kwargs in lists]
        binder = Binder()
        store = self.store
        store._immediate = lambda: contextlib.nullcontext(binder)
        try:
            started = time.process_time()
            store.append_decisions(decisions)
            return time.process_time() - started, binder
        finally:
            del store._immediate


class Binder:
    """Stands in for the writer's SQLite connection (``--python-side``): takes each statement's
    values as ``sqlite3`` would (every parameter set read), keeps them by table."""

    total_changes = 0

    def __init__(self) -> None:
        self.bound: dict[str, list[Any]] = {}

    def _take(self, sql: str, values: Any) -> None:
        table = sql.split(" INTO ", 1)[1].split(" ", 1)[0]
        self.bound.setdefault(table, []).extend(values)

    def execute(self, sql: str, values: Any = ()) -> None:
        self._take(sql, values)

    def getlimit(self, _category: int) -> int:
        """The variable limit of SQLite since 3.32 (``store.sqlite._decisions_per_insert``)."""
        return 32_766

    def executemany(self, sql: str, rows: Any) -> None:
        for values in rows:
            self._take(sql, values)


def rid(k: int) -> str:
    """The k-th list's recommendation id: random hex as the route's ``uuid4().hex``, the same on
    both sides (random ids land all over the stores' primary-key indexes, as served ones do)."""
    return uuid.UUID(int=random.Random(k).getrandbits(128), version=4).hex


def listed(k: int, ranker: bool = False) -> dict[str, Any]:
    """The k-th list as the route hands it over (lists and floats as the response holds them);
    with ``ranker`` its scores as a ranker's float32 scores widened to float64, as the route
    hands them over (``.tolist()``): 17 significant digits each, the slowest ``repr``."""
    scores = [1.0 / (j + 1 + k % 3) for j in range(ITEMS)]
    return {
        "route": "recommendations",
        "release": "20261204-120000",
        "item_ids": [f"i{(k * 7 + j * 131) % 100_000}" for j in range(ITEMS)],
        "scores": np.float32(scores).tolist() if ranker else scores,
        "sources": [SOURCES[(k + j) % len(SOURCES)] for j in range(ITEMS)],
        "unit": f"u{k % 50_000}",
        "unit_kind": "user",
        "latency_ms": 3.0 + (k % 7),
    }


def composition(variant: str, rounds: int, per_round: int) -> str:
    """Mean CPU µs per list of the writer step's three parts on a growing file (``variant``:
    ``served``, ``normal``, ``no_unit_index`` or ``ordered_ids``: ids that start with the
    list's number, as a time prefix would, so the primary key appends), the first 10 rounds
    left out as warm-up."""
    from recsmith.decisions.record import decision
    from recsmith.decisions.rows import header_rows
    from recsmith.store import sqlite

    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite.SQLiteStore(Path(tmp) / "events.db")._conn()
        if variant == "normal":
            conn.execute("PRAGMA synchronous=NORMAL")
        if variant == "no_unit_index":
            conn.execute("DROP INDEX decisions_unit_served")
        parts: dict[str, list[float]] = {"rows": [], "insert": [], "commit": []}
        for r in range(rounds + 10):
            first = r * per_round
            ids = [
                f"{k:012x}{rid(k)[12:]}" if variant == "ordered_ids" else rid(k)
                for k in range(first, first + per_round)
            ]
            lists = [decision(i, **listed(first + n)) for n, i in enumerate(ids)]
            t0 = time.process_time()
            heads = header_rows(lists)
            t1 = time.process_time()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sqlite._INSERT_DECISION, heads)
            t2 = time.process_time()
            conn.execute("COMMIT")
            t3 = time.process_time()
            if r >= 10:
                for name, (a, b) in zip(parts, ((t0, t1), (t1, t2), (t2, t3)), strict=True):
                    parts[name].append((b - a) / per_round * 1e6)
    means = {k: statistics.mean(v) for k, v in parts.items()}
    shown = " ".join(f"{k} {v:5.1f}" for k, v in means.items())
    return f"{variant:16} {shown}  total {sum(means.values()):5.1f} µs/list"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="the other checkout's src")
    parser.add_argument("--composition", action="store_true", help="split the writer's step")
    parser.add_argument(
        "--python-side",
        action="store_true",
        help="the writer's step without SQLite: building and binding the rows (with --against)",
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=1000, help="lists recorded per round")
    parser.add_argument(
        "--ranker-scores", action="store_true", help="scores as a ranker's float32, widened"
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    if args.composition:
        for variant in ("served", "normal", "no_unit_index", "ordered_ids") * 2:
            print(composition(variant, args.rounds, args.per_round), flush=True)
        return
    if args.against is None:
        parser.error("--against is required (or --composition)")
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        sides = {}
        for name, pkg in (("against", "recsmith_base"), ("this", "recsmith")):
            (Path(tmp) / name).mkdir()
            sides[name] = Side(pkg, Path(tmp) / name)
        gc.collect()
        gc.freeze()
        if args.python_side:
            python_side(sides, args.rounds, args.per_round, args.ranker_scores)
            return
        cost: dict[str, dict[str, list[float]]] = {n: {"record": [], "flush": []} for n in sides}
        for r in range(args.rounds + 1):  # round 0 warms up
            first = r * args.per_round
            lists = [
                (rid(k), listed(k, args.ranker_scores))
                for k in range(first, first + args.per_round)
            ]
            for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
                rec = sides[name].record(lists)
                flushed = sides[name].flush()
                if r:
                    cost[name]["record"].append(rec / args.per_round * 1e6)
                    cost[name]["flush"].append(flushed / args.per_round * 1e6)
        frames = {n: s.store.scan_decisions() for n, s in sides.items()}
        same = (
            frames["this"]
            .drop(columns="served_at")
            .equals(frames["against"].drop(columns="served_at"))
        )
        print(
            f"lists stored: {len(frames['this']['recommendation_id'].unique())} each side; "
            f"stored rows identical but for served_at: {same}"
        )
        print(
            "side     record µs/list  flush µs/list  total µs/list  (median CPU, "
            f"{args.rounds} rounds of {args.per_round})"
        )
        totals = {}
        for name, c in cost.items():
            rec, fl = statistics.median(c["record"]), statistics.median(c["flush"])
            total = statistics.median(a + b for a, b in zip(c["record"], c["flush"], strict=True))
            totals[name] = total
            print(f"{name:8} {rec:14.1f} {fl:14.1f} {total:14.1f}")
        print(f"ratio this/against: {totals['this'] / totals['against']:.3f}")


def python_side(sides: dict[str, Side], rounds: int, per_round: int, ranker: bool) -> None:
    """``--python-side``: each side's ``append_decisions`` on the same lists, SQLite taken out,
    alternating; every value handed to SQLite compared between the sides."""
    spent: dict[str, list[float]] = {n: [] for n in sides}
    same = True
    served = datetime.now(UTC)  # one time for both sides' lists: their values compare whole
    for r in range(rounds + 1):  # round 0 warms up
        lists = [
            (rid(k), listed(k, ranker) | {"served_at": served})
            for k in range(r * per_round, (r + 1) * per_round)
        ]
        bound = {}
        for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
            cpu, bound[name] = sides[name].python_side(lists)
            if r:
                spent[name].append(cpu / per_round * 1e6)
        same = same and bound["this"].bound == bound["against"].bound
    print(f"every value handed to SQLite identical between the sides: {same}")
    medians = {n: statistics.median(v) for n, v in spent.items()}
    print(
        "writer's step without SQLite, median CPU µs/list over "
        f"{rounds} rounds of {per_round}: against {medians['against']:.2f}  this "
        f"{medians['this']:.2f}  ratio {medians['this'] / medians['against']:.3f}"
    )


if __name__ == "__main__":
    main()
