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

import numpy as np
from ials_seed_spread import seeds_parser, split_of

from recsmith.evaluation.runner import evaluate_model

K = 10


def main() -> None:
    parser = seeds_parser(__doc__, "100,200,300,400,500")
    parser.add_argument("--starts", default="1,3")
    args = parser.parse_args()
    _, _, data, truth = split_of(args)
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
