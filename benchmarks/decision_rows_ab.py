"""Whether two checkouts' decision writers leave the same rows: each stores the same lists into its
own SQLite file through its own ``DecisionLog`` (record, then flush, batch by batch), and the two
``decisions`` tables are compared row for row in insertion order, every column and the rowid
(issue #19: a cheaper writer must store exactly what the old one stored).

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/decision_rows_ab.py \\
        --against /tmp/base/src --lists 20000

Lists as ``decision_log_cost.py`` makes them (ten items, scores, sources, a user, a latency),
each with its own fixed ``served_at``; every 97th list repeats an earlier id (a retried list:
the first copy must win); batches of 1 to 700 lists (across the writer's 64-list statements);
every 50th list an exploring one (propensities given), every 60th one with scores at the edges
of float formatting (``EDGES``) and every 70th one with no item. ``--ranker-scores``: the other
lists' scores as a ranker's float32 widened (``decision_log_cost.listed``).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from answer_ab import renamed_copy
from decision_log_cost import listed, rid

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


#: Scores where Python's float formatting and a faster encoder's may part (exponents, the
#: extremes of float64, non-finite floats): every 60th list shows them.
EDGES = [1e-4, 9.9e-05, 1e-5, 1e-7, 1e16, 1e22, 5e-324, float("nan"), float("-inf"), -0.0]


def lists(n: int, ranker: bool = False) -> list[tuple[str, dict[str, Any]]]:
    made = []
    for k in range(n):
        kwargs = listed(k, ranker) | {"served_at": T0 + timedelta(microseconds=k * 1_337)}
        if k % 60 == 59:
            kwargs["scores"] = EDGES
        if k % 70 == 0:
            kwargs |= {"item_ids": [], "scores": [], "sources": []}
        if k % 50 == 0:
            kwargs["propensities"] = [1.0 / (j + 2) for j in range(len(kwargs["item_ids"]))]
        made.append((rid(k // 2 if k % 97 == 96 else k), kwargs))
    return made


def write(pkg: str, folder: Path, made: list[tuple[str, dict[str, Any]]], sizes: list[int]) -> Path:
    """``made`` stored by ``pkg``'s log in batches of ``sizes``; returns the file."""
    decision = __import__(f"{pkg}.decisions.record", fromlist=["x"]).decision
    log_mod = __import__(f"{pkg}.decisions.log", fromlist=["x"])
    config = __import__(f"{pkg}.config", fromlist=["x"])
    sqlite = __import__(f"{pkg}.store.sqlite", fromlist=["x"])
    path = folder / "events.db"
    log = log_mod.DecisionLog(sqlite.SQLiteStore(path), config.DecisionSettings(buffer_size=10**6))
    at = 0
    for size in sizes:
        for recommendation_id, kwargs in made[at : at + size]:
            log.record(decision(recommendation_id, **kwargs))
        log.flush()
        at += size
    return path


def table(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT rowid, * FROM decisions ORDER BY rowid").fetchall()
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--lists", type=int, default=20_000)
    parser.add_argument(
        "--ranker-scores", action="store_true", help="scores as a ranker's float32, widened"
    )
    args = parser.parse_args()
    made = lists(args.lists, args.ranker_scores)
    draw = random.Random(19)
    sizes: list[int] = []
    while sum(sizes) < len(made):
        sizes.append(draw.choice([1, 63, 64, 65, 200, 700, draw.randint(1, 700)]))
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        tables = {}
        for name, pkg in (("against", "recsmith_base"), ("this", "recsmith")):
            (Path(tmp) / name).mkdir()
            tables[name] = table(write(pkg, Path(tmp) / name, made, sizes))
    a, b = tables["against"], tables["this"]
    differ = sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))
    print(
        f"lists recorded {len(made):,} in {len(sizes)} flushes; rows stored: against {len(a):,}, "
        f"this {len(b):,}; rows differing in any column or rowid: {differ}"
    )
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
