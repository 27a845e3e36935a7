"""The capping read alone, before and after it skipped pandas: one unit's recent shows from the
decision log, as a request reads them, interleaved in one process.

"before" is what ``capping.history.shown_since`` did until it read plain rows: the store's
``shown_to`` frame (``LOOKUP_COLUMNS``, built by pandas) turned into arrays; "after" is
``shown_since`` now (``EventStore.shows_of``). Same store, same units, rounds interleaved.

    .venv/bin/python benchmarks/capping_read.py [--units 40 --lists 30 --rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from calibration import calibration_line

from recsmith.capping.history import shown_since
from recsmith.decisions.record import decision
from recsmith.store.sqlite import SQLiteStore


def frame_read(store: SQLiteStore, unit: str, since_us: int, until_us: int) -> tuple:
    """The read as it was: a pandas frame, then its columns as arrays."""
    stored = store.shown_to([unit], since_us, until_us)
    return (
        stored["item_id"].to_numpy(dtype=object),
        stored["served_at"].to_numpy(dtype=np.int64),
        stored["page_view"].to_numpy(dtype=object),
        set(stored["recommendation_id"].tolist()),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--lists", type=int, default=30, help="lists of 10 items per unit")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(calibration_line())
    store = SQLiteStore(Path(tempfile.mkdtemp()) / "s.sqlite")
    now = datetime.now(UTC)
    units = [f"u{n}" for n in range(args.units)]
    store.append_decisions(
        [
            decision(
                f"{unit}-{n}",
                unit=unit,
                unit_kind="user",
                route="recommendations",
                release="r1",
                item_ids=[f"i{(n + p) % 50}" for p in range(10)],
                scores=[1.0] * 10,
                sources=[("knn",)] * 10,
                served_at=now - timedelta(minutes=n),
            )
            for unit in units
            for n in range(args.lists)
        ]
    )
    until = int(now.timestamp() * 1e6) + 1
    since = until - 86_400_000_000
    reads = {
        "before: shown_to frame": lambda u: frame_read(store, u, since, until),
        "after: shows_of rows": lambda u: shown_since(store, None, u, since, until),
    }
    times: dict[str, list[float]] = {name: [] for name in reads}
    for _ in range(args.rounds):
        for name, read in reads.items():
            for unit in units:
                started = time.perf_counter()
                read(unit)
                times[name].append((time.perf_counter() - started) * 1e3)
    store.close()
    print(f"units={args.units}, {args.lists * 10} shown rows each, rounds={args.rounds}")
    print("| read | median ms | p90 ms |")
    print("|---|---:|---:|")
    for name, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"| {name} | {statistics.median(values):.3f} | {p90:.3f} |")


if __name__ == "__main__":
    main()
