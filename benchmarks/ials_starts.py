"""iALS alone from one start and averaged over several, over many seeds: the mean and the spread.

    cd benchmarks && OPENBLAS_NUM_THREADS=1 python ials_starts.py --dataset ml-100k \
        --protocol temporal:0.8 --part validation --seeds 100,200,300,400,500 --starts 1,3,5

``bar_check``'s split (``--part validation`` cuts the train part again: nothing of the test part
is read) and the runner's scoring (``evaluate_model``, seen items excluded) of ``ImplicitALS`` at
its defaults but ``starts`` and ``random_state``. Averaged fits use seeds N, N+1, …: keep the
listed seeds at least ``starts`` apart, or two ensembles share starts and the spread shrinks for
that reason alone.
"""

from __future__ import annotations

import argparse

import numpy as np
from bar_check import parts
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.evaluation.runner import evaluate_model, ground_truth
from recsmith.features.interactions import Interactions

K = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--protocol", default="temporal:0.8")
    parser.add_argument("--part", choices=("validation", "test"), default="validation")
    parser.add_argument("--seeds", default="100,200,300,400,500")
    parser.add_argument("--starts", default="1,3")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    split, _ = parts(args.dataset, args.protocol, args.part)
    data = Interactions.from_events(split.train, dict(EventSettings().weights))
    truth = ground_truth(data, split.test)
    print(f"{args.dataset} {args.protocol} {args.part}: {len(truth.user_ids):,} users", flush=True)
    for starts in map(int, args.starts.split(",")):
        scores, seconds = [], []
        for seed in map(int, args.seeds.split(",")):
            params = {"random_state": seed, "starts": starts}
            r = evaluate_model("ials", data, truth, K, params, ("ndcg",))
            scores.append(r.metrics["ndcg"])
            seconds.append(r.fit_seconds)
        s = np.array(scores)
        print(
            f"starts {starts}: NDCG@10 mean {s.mean():.4f} sd {s.std(ddof=1):.4f} "
            f"range {s.min():.4f}–{s.max():.4f} ({', '.join(f'{x:.4f}' for x in s)}); "
            f"fit {np.median(seconds):.1f} s median",
            flush=True,
        )


if __name__ == "__main__":
    main()
