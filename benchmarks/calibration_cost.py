"""What training the default pipeline costs on a simulated shop, calibration included (#15).

    cd benchmarks && OPENBLAS_NUM_THREADS=1 python calibration_cost.py --users 33000 --items 5000

The simulator's shop (``recsmith.simulate``: ~30 events a user, so 33k users is ~1M events, the
issue's "1M-event shop") trained with ``default.toml`` (``examples/pipeline.toml``) exactly as
``recsmith train`` trains it. Prints wall and CPU seconds of the whole training, the
calibration's own seconds, what became of its ranker, where its CPU budget stopped a grid
(``shape_sweep.stops``; the one-line choice does not say) and its one-line choice. Run it
under two source trees (``PYTHONPATH=…/src``) in one shell, alternating, to compare a
calibration change against its baseline under the same load: the script uses only public entry
points, so it runs on either.
"""

from __future__ import annotations

import argparse
import time

from calibration import calibration_line
from shape_sweep import stops

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events, validate_items
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import default_pipeline_config
from recsmith.simulate import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=33_000)
    parser.add_argument("--items", type=int, default=5_000)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    sim = simulate(n_users=args.users, n_items=args.items, seed=0)
    settings = EventSettings()
    events, _ = validate_events(sim.events, settings)
    items, _ = validate_items(sim.items)
    print(f"{len(events):,} events, {events['user_id'].nunique():,} users, {len(items):,} items")
    wall, cpu = time.perf_counter(), time.process_time()
    config, weights = default_pipeline_config(), dict(settings.weights)
    pipeline = train_pipeline(config, events, weights, items=items)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    manifest = pipeline.manifest
    report = manifest.get("calibration", {})
    seconds = report.get("seconds", float("nan"))
    print(f"train: {wall:.0f} s wall, {cpu:.0f} s CPU; calibration {seconds:.0f} s wall")
    print(f"calibration's ranker: {report.get('ranker')}")
    print(f"calibration's sasrec: {report.get('sasrec')}")
    print(f"calibration's budget stops: {'; '.join(stops(report)) or 'none'}")
    print(manifest.get("calibration_summary") or manifest["ranker_summary"], flush=True)


if __name__ == "__main__":
    main()
