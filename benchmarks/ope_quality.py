"""Bias, RMSE, variance and 95 % interval coverage of every estimator where the truth is known.

The synthetic bandit of ``recsmith.ope.synthetic``: 5 actions logged uniformly, two contexts
(x_0), Bernoulli rewards with means [.1 .2 .3 .4 .5] in context 0 and [.6 .5 .4 .3 .2] in
context 1; the target plays action 4 in context 0 and action 0 in context 1 (true value 0.55).
``--seeds`` independent logs of ``--rounds`` rounds; IPS also clipped at each ``--clips``.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 python benchmarks/ope_quality.py [--seeds 500]
"""

from __future__ import annotations

import argparse

import numpy as np
from calibration import calibration_line

from recsmith.ope import ESTIMATORS, estimate
from recsmith.ope.synthetic import Bandit, logs

BANDIT = Bandit(np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.6, 0.5, 0.4, 0.3, 0.2]]), np.array([4, 0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=500)
    parser.add_argument("--clips", default="1,2.5,4")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    clips = [float(c) for c in args.clips.split(",")]
    rows = [*ESTIMATORS, *(f"ips clip {c:g}" for c in clips)]
    values = {name: [] for name in rows}
    covers = {name: [] for name in rows}
    truth = BANDIT.true_value
    for s, (log, target) in enumerate(logs(BANDIT, args.seeds, args.rounds, seed=1)):
        runs = [(ESTIMATORS, None, "")] + [(("ips",), c, f" clip {c:g}") for c in clips]
        for names, clip, suffix in runs:
            report = estimate(log, target, names, clip=clip, bootstrap=args.bootstrap, seed=s)
            for name in names:
                lo, hi = report.intervals[name]
                values[name + suffix].append(report.values[name])
                covers[name + suffix].append(lo <= truth <= hi)
    print(f"true value {truth}; {args.seeds} seeds x {args.rounds} rounds")
    print("| estimator | mean | bias (± s.e.) | sd | RMSE | 95 % CI coverage |")
    print("|---|---|---|---|---|---|")
    for name in rows:
        v = np.array(values[name])
        se = v.std(ddof=1) / np.sqrt(len(v))
        rmse = np.sqrt(np.mean((v - truth) ** 2))
        print(
            f"| {name} | {v.mean():.4f} | {v.mean() - truth:+.4f} (± {se:.4f}) "
            f"| {v.std(ddof=1):.4f} | {rmse:.4f} | {np.mean(covers[name]):.1%} |"
        )


if __name__ == "__main__":
    main()
