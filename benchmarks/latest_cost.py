"""Request cost of ``transitions`` following a known user's latest items (BENCHMARKS §72):
``Pipeline.top_k`` for one known user with 5 recent items, ``Queries.latest`` built and read
(``reads_order`` on) against not (off: the path before), alternating in one process; then
``Interactions.from_events``' time per call at 1M events (what building it once saves).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/latest_cost.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from calibration import calibration_line

from recsmith.config import EventSettings, Weight
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.simulate import simulate

SOURCES = [
    {"name": "knn", "model": "itemknn", "quota": 100},
    {"name": "transitions", "model": "transitions", "quota": 50},
    {"name": "knn_recent", "model": "itemknn", "use": "recent", "quota": 50},
]


def request_cost(weights: dict[str, Weight], rounds: int = 5) -> None:
    """µs per request with ``reads_order`` on and off, alternating which goes first."""
    events = simulate(n_users=2000, n_items=1000, seed=1).events
    frame, _ = validate_events(events, EventSettings())
    config = PipelineConfig.model_validate(
        {"retrieval": {"sources": SOURCES}, "ranking": {"enabled": False}}
    )
    pipe = train_pipeline(config, frame, weights)
    users = pipe.bundle.users.to_external(np.arange(200))
    items = pipe.bundle.items.to_external(np.arange(len(pipe.bundle.items)))
    rng = np.random.default_rng(0)
    recent = [list(rng.choice(items, 5, replace=False)) for _ in users]
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for flag in (True, False) if r % 2 == 0 else (False, True):
            pipe.reads_order = flag
            started = time.perf_counter()
            for user, latest in zip(users, recent, strict=True):
                pipe.top_k([user], 10, recent=[latest])
            times[flag].append((time.perf_counter() - started) / len(users) * 1e6)
    for flag, runs in times.items():
        print(f"reads_order={flag}: median {np.median(runs):.0f} µs/request, runs {np.round(runs)}")


def matrix_cost(weights: dict[str, Weight], n_events: int = 1_000_000) -> None:
    """Seconds per ``from_events`` call on ``n_events`` shuffled simulated events."""
    frame, _ = validate_events(
        simulate(n_users=50_000, n_items=20_000, seed=2).events, EventSettings()
    )
    copies = int(np.ceil(n_events / len(frame)))
    big = pd.concat(
        [frame.assign(event_id=frame.event_id + f"-{c}", ts=frame.ts + c) for c in range(copies)]
    ).iloc[:n_events]
    big = big.sample(frac=1.0, random_state=0)
    for _ in range(2):
        started = time.perf_counter()
        Interactions.from_events(big, weights)
        print(f"from_events on {len(big):,} events: {time.perf_counter() - started:.2f} s")


def main() -> None:
    print(calibration_line())
    weights = dict(EventSettings().weights)
    request_cost(weights)
    matrix_cost(weights)
    print(calibration_line())


if __name__ == "__main__":
    main()
