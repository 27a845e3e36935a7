"""A candidate measured and not adopted (BENCHMARKS §104): where no validation protocol decides,
ship an even blend of popularity and the source the maximin picks (both at weight 1 in the
fused order) instead of either. Test NDCG@10 of the blend on ``choice_oracle.py`` records'
samples, beside the recorded popularity and maximin pick; a sample whose recorded choice is not a
single source (the fused order, the ranker) has no pick to blend and is said so.

    OPENBLAS_NUM_THREADS=1 RECSMITH_DATASETS=… PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/weak_blend.py /tmp/oracle/sparse-ml-100k-9.pkl …
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

from choice_oracle import test_scores
from shape_sweep import SHAPES, events_of, ratio_interval, sample, split

from recsmith.pipeline.calibration import POPULARITY, with_popularity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.records:
        with open(path, "rb") as f:
            record = pickle.load(f)
        singles = [c for c in record["calls"] if c[0] == "deciding"][-1][1]
        pick = next((t for t in singles if t.name == record["chosen"]), None)
        if pick is None:
            print(f"{path.stem}: {record['chosen']} shipped, not a single source: no blend")
            continue
        shape, dataset = path.stem.split("-", 1)[0], path.stem.split("-", 1)[1].rsplit("-", 1)[0]
        seed = int(path.stem.rsplit("-", 1)[1])
        drawn = sample(events_of(dataset, seed), SHAPES[shape], seed)
        s = split(drawn, SHAPES[shape].protocol)
        events = s.train.assign(event_id=None, context=None)
        widest = with_popularity(pick.config)
        sources = [
            src.model_copy(update={"weight": 1.0}) if src.name == POPULARITY else src
            for src in widest.retrieval.sources
        ]
        retrieval = widest.retrieval.model_copy(update={"sources": sources})
        blend = widest.model_copy(update={"retrieval": retrieval})
        off = blend.model_copy(
            update={
                "calibration": blend.calibration.model_copy(update={"enabled": False}),
                "ranking": blend.ranking.model_copy(update={"enabled": False}),
            }
        )
        scores = test_scores(off, s, events)[0]
        popular = record["test"]["popularity"]
        ratio = "{:.2f} [{:.2f}, {:.2f}]"
        said = [
            f"{name} {v.mean():.4f} ({ratio.format(*ratio_interval(v, popular))})"
            for name, v in (
                (record["chosen"], record["shipped"]),
                (f"popularity+{record['chosen']}", scores),
            )
        ]
        print(f"{path.stem}: popularity {popular.mean():.4f}; " + "; ".join(said), flush=True)


if __name__ == "__main__":
    main()
