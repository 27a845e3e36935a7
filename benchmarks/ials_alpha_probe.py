"""Which iALS confidence scale α validation would pick on shape_sweep's samples, over a range
wider than calibration's grid (0.2 / 2 / 20): the peers tune α up to 40 (BENCHMARKS §161).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/ials_alpha_probe.py short:diginetica-sample:0,1 market:simulated:0

Each ``SHAPE:DATASET:SEEDS`` sample's train part only (never its test part): each user's latest
item held out of it (``source_tuning.latest_item_holdout``) and iALS alone, fitted on the rest,
scored there at every α (``source_tuning``'s own scorer), so a choice made from this reads no test
data. One line per sample: its held-out users, the α with the highest NDCG@10, every α's score.
"""

from __future__ import annotations

import argparse

import numpy as np
from shape_sweep import SHAPES, events_of, sample, split

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.pipeline.config import SourceConfig
from recsmith.pipeline.source_tuning import _holdout_ndcg, known_items, latest_item_holdout

ALPHAS = (0.2, 2.0, 5.0, 20.0, 50.0, 100.0)
IALS = SourceConfig(name="ials", model="ials", quota=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("samples", nargs="+", help="SHAPE:DATASET:SEED[,SEED...]")
    args = parser.parse_args()
    for spec in args.samples:
        shape, dataset, seeds = spec.split(":")
        for seed in map(int, seeds.split(",")):
            drawn = sample(events_of(dataset, seed), SHAPES[shape], seed)
            train = split(drawn, SHAPES[shape].protocol).train
            full = Interactions.from_events(
                train.assign(event_id=None, context=None), dict(EventSettings().weights)
            )
            out = latest_item_holdout(full, seed, 5000)
            past, users, items = out.past, out.users, out.held
            blocked = ~known_items(past, full, out.items)
            ndcg = [_holdout_ndcg(IALS, {"alpha": a}, past, users, items, blocked) for a in ALPHAS]
            scores = " ".join(f"{a:g}:{v:.4f}" for a, v in zip(ALPHAS, ndcg, strict=True))
            best = ALPHAS[int(np.argmax(ndcg))]
            print(f"{shape}/{dataset}/{seed} users={len(users)} best={best:g} {scores}", flush=True)


if __name__ == "__main__":
    main()
