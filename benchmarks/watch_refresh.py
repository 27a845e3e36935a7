"""What one refresh of the server's fairness watch costs, reading the decision window whole (as
every worker did on every refresh) against reading it incrementally (``decisions.window``).

Fills a SQLite store with an hour of lists (``--lists-per-s`` lists of 10 items, served over the
last ``--window-min`` minutes), then, ``--rounds`` times: appends one refresh period's new lists
(``--refresh-s``), and times a full-read watch and an incremental one over the same store, in
turn, checking that both set the same gauges. The incremental watch's first read (a whole
window, as at a server's start) is timed apart.

    .venv/bin/python benchmarks/watch_refresh.py --lists-per-s 30 --window-min 60
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from calibration import calibration, calibration_line

from recsmith.decisions.record import Decision, decision
from recsmith.decisions.window import windowed
from recsmith.fairness.watch import FairnessWatch
from recsmith.store.sqlite import SQLiteStore


def lists(rng: np.random.Generator, start: datetime, seconds: float, rate: float) -> list[Decision]:
    """``rate`` lists per second of 10 random items from 5,000 for random users of 2,000."""
    n = int(seconds * rate)
    offsets = np.sort(rng.uniform(0, seconds, n))
    items = rng.integers(0, 5000, (n, 10))
    users = rng.integers(0, 2000, n)
    return [
        decision(
            f"r-{start.timestamp():.0f}-{k}",
            unit=f"u{users[k]}",
            unit_kind="user",
            route="recommendations",
            release="bench",
            item_ids=[f"i{i}" for i in items[k]],
            scores=[1.0] * 10,
            sources=[("als",)] * 10,
            served_at=start + timedelta(seconds=float(offsets[k])),
        )
        for k in range(n)
    ]


def timed_refresh(watch: FairnessWatch, now: datetime) -> tuple[float, tuple[float, ...]]:
    seen: list[tuple[float, ...]] = []
    watch.gauges = lambda share, gini, narrow: seen.append((*sorted(share.values()), gini, narrow))
    started = time.perf_counter()
    watch.refresh(now)
    return time.perf_counter() - started, seen[0]


def same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists-per-s", type=float, default=30.0)
    parser.add_argument("--window-min", type=float, default=60.0)
    parser.add_argument("--refresh-s", type=float, default=300.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(calibration_line(calibration()), flush=True)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "store.sqlite")
        now = datetime.now(UTC).replace(microsecond=0)
        window_s = args.window_min * 60
        store.append_decisions(
            lists(rng, now - timedelta(seconds=window_s), window_s, args.lists_per_s)
        )
        rows = len(store.scan_decisions())
        print(
            f"window: {rows:,} shown items "
            f"({args.lists_per_s:g} lists/s over {args.window_min:g} min)"
        )
        full = FairnessWatch(store, lambda: None, lambda *_: None)
        # the decision log's clock is the benchmark's: each round is one refresh period later
        clock = [now]
        incremental = FairnessWatch(
            windowed(store, lambda: clock[0]), lambda: None, lambda *_: None
        )
        first, _ = timed_refresh(incremental, now)
        print(f"incremental watch, first (whole-window) read: {first * 1e3:,.0f} ms")
        for k in range(args.rounds):
            store.append_decisions(lists(rng, now, args.refresh_s, args.lists_per_s))
            now += timedelta(seconds=args.refresh_s)
            clock[0] = now
            whole, by_full = timed_refresh(full, now)
            part, by_part = timed_refresh(incremental, now)
            verdict = "same gauges" if same(by_full, by_part) else "GAUGES DIFFER"
            print(
                f"round {k + 1}: full read {whole * 1e3:,.0f} ms, incremental {part * 1e3:,.0f} ms "
                f"({whole / part:.1f}x), {verdict}; whole-window reads so far: "
                f"{incremental.store.window.full_reads}",
                flush=True,
            )
        store.close()


if __name__ == "__main__":
    main()
