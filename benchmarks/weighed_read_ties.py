"""``EventStore.users_items_weighed`` CPU time on one store (fix31t, BENCHMARKS §186): a typical
user (100 events on 40 items) and a 20,000-event user (2,000 items), a view, a -2 rating, a
+4 rating and a play of 0 in turn. Run it with ``src`` of each tree to compare (the tie rule,
"at one instant the event weighing 0 or below decides", against ``max(ts)``'s bare columns).
Median over rounds of the process CPU µs per read: for PostgreSQL the client's share only.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/weighed_read_ties.py sqlite
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.events.latest import signal_of
from recsmith.store.base import EventStore
from recsmith.testing.backends import open_backend
from recsmith.testing.contracts import event, ingest

#: (type, value) of each event in turn
KINDS: list[tuple[str, float | None]] = [
    ("view", None),
    ("rating", -2.0),
    ("rating", 4.0),
    ("play", 0.0),
]
#: user: (events, distinct items, reads per round)
USERS = {"typical": (100, 40, 2000), "heavy": (20_000, 2_000, 20)}


def _fill(store: EventStore) -> None:
    for user, (n, items, _) in USERS.items():
        rows: list[dict[str, Any]] = []
        for j in range(n):
            kind, value = KINDS[j % len(KINDS)]
            extra = {} if value is None else {"value": value}
            rows.append(
                event(f"i{j % items}", f"{user}{j}", user=user, kind=kind, h=j / 7, **extra)
            )
        for start in range(0, n, 5000):
            ingest(store, rows[start : start + 5000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=["sqlite", "postgres"])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    signal = signal_of(EventSettings().weights)
    with (
        tempfile.TemporaryDirectory() as workdir,
        open_backend(args.backend, Path(workdir)) as (
            store,
            _,
        ),
    ):
        _fill(store)
        for user, (_, _, reads) in USERS.items():
            times = []
            for _ in range(args.rounds):
                started = time.process_time()
                for _ in range(reads):
                    store.users_items_weighed([user], signal)
                times.append((time.process_time() - started) / reads * 1e6)
            print(f"{args.backend} {user}: {statistics.median(times):.1f} µs a read", flush=True)


if __name__ == "__main__":
    main()
