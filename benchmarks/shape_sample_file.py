"""One of ``shape_sweep``'s sub-samples written as an events file, for ``peers.py --events-file``.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks python benchmarks/shape_sample_file.py \
        --shape market --dataset simulated --seed 0 --out /tmp/market-simulated-0.csv

Every event of the sample (both sides of the time cut: ``peers.py`` splits it itself, with
recsmith's ``temporal:0.8``), in the columns ``recsmith import`` reads and with the timestamps
``shape_sweep`` gives ``recsmith import``, so RecTools and LensKit, which ``shape_sweep`` does not
run, see the sample the sweep scores.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from shape_sweep import SHAPES, events_of, sample


def write_events(events: pd.DataFrame, path: Path) -> None:
    """``events`` (``shape_sweep``'s frame: ``ts`` in microseconds) as ``recsmith import`` reads
    them, the timestamps written as ``shape_sweep.shipped`` writes its train file."""
    frame = events.assign(timestamp=pd.to_datetime(events["ts"], unit="us", utc=True))
    frame[["user_id", "item_id", "event_type", "value", "timestamp"]].to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", required=True, choices=sorted(SHAPES))
    parser.add_argument("--dataset", required=True, help="a data set the shape is drawn from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    events = sample(events_of(args.dataset, args.seed), SHAPES[args.shape], args.seed)
    write_events(events, args.out)
    print(f"{len(events):,} events, {events['user_id'].nunique():,} users, "
          f"{events['item_id'].nunique():,} items -> {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
