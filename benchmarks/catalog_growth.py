"""What growing a served pipeline's item index costs (issue #12): one catalogue-sync batch that
brings a new item, against one that only updates a known item, and a request's latency before and
after the index grew (model-backed sources then see queries cut to the trained items).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/catalog_growth.py --items 50000 [--content]

A simulated shop (``recsmith.simulate``); a pipeline of item-kNN on the latest items, trending and
new arrivals (and with ``--content`` a content source, whose catalogue vectors grow too), no
ranker (the growth touches no model). Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events, validate_items
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.simulate import simulate


def median_ms(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--content", action="store_true", help="add a content source")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    sim = simulate(n_users=args.users, n_items=args.items, seed=5)
    events, _ = validate_events(sim.events, EventSettings())
    items, _ = validate_items(sim.items)
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "recent", "model": "itemknn", "use": "recent", "quota": 50},
                    {"name": "trending", "model": "trending", "quota": 30, "weight": 0.1},
                    {"name": "new_arrivals", "kind": "new_arrivals", "quota": 20, "weight": 0.1},
                    *([{"name": "content", "model": "content", "quota": 20}] * args.content),
                ]
            },
            "ranking": {"enabled": False},
        }
    )
    pipe = train_pipeline(config, events, dict(EventSettings().weights), items=items)
    user = str(events["user_id"].iloc[0])
    known = Item(item_id=items[0].item_id, categories=["x"], available=False)
    counter = iter(range(10**9))

    def new_item() -> Item:
        return Item(item_id=f"new-{next(counter)}", categories=["x"], created_at=datetime.now(UTC))

    update = median_ms(lambda: pipe.with_catalog([known], 1), args.repeat)
    served = [pipe]

    def grow_served() -> None:  # the served release grows batch after batch
        served[0] = served[0].with_catalog([new_item()], 1)

    grow = median_ms(grow_served, args.repeat)
    grown = pipe.with_catalog([new_item()], 1)
    before = median_ms(lambda: pipe.answer([user], 10), args.repeat * 10)
    after = median_ms(lambda: grown.answer([user], 10), args.repeat * 10)
    print(
        f"{len(pipe.bundle.items):,} items, {len(events):,} events: catalogue batch of one known "
        f"item {update:.1f} ms, of one new item (index growth) {grow:.1f} ms; one user's list "
        f"(k=10) {before:.2f} ms before growth, {after:.2f} ms after",
        flush=True,
    )


if __name__ == "__main__":
    main()
