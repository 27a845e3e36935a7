"""Thompson traffic allocation between experiment variants vs fixed weights, in a seeded simulation.

Three variants (control and two treatments) whose true click-through per impression is known:
0.040, 0.044 and 0.050. Lists of 10 impressions each arrive; a list under variant v gets
Binomial(10, ctr_v) clicks. The allocation runs the engine's own policy
(``recsmith.experiments.adaptive.shares``) on counts that are synced every 200 lists (about a
second of a busy shop, as the server's bandit board does); fixed weights give each variant 1/3.
Reported per policy, mean over seeds:

- regret: expected clicks lost against sending every list to the best variant,
  Σ 10 · (ctr_best − ctr_v) over lists;
- clicks per 1,000 lists;
- the best variant's share of the lists;
- the off-policy estimate the report decides on (SNIPS of each variant's CTR per impression from
  the logged assignment propensities): its bias against the truth and the coverage of its 95 %
  interval over seeds, and how often the report's verdict promotes the best treatment.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/adaptive_allocation.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from calibration import calibration_line

from recsmith.experiments.adaptive import arm_key, shares
from recsmith.experiments.adaptive_report import adaptive_verdict, off_policy
from recsmith.experiments.assignment import pick
from recsmith.experiments.spec import Experiment, Variant
from recsmith.exploration.arms import ArmCounts

TRUTH = np.array([0.040, 0.044, 0.050])
K = 10
SYNC = 200


def experiment(allocation: str) -> Experiment:
    names = ("control", "t1", "t2")
    return Experiment(
        "sim",
        tuple(Variant(n, n, 1.0) for n in names),
        salt=f"sim:{allocation}",
        allocation=allocation,  # type: ignore[arg-type]
        min_share=0.05,
        burn_in=500,
    )


def run(allocation: str, lists: int, seed: int) -> dict[str, float]:
    exp = experiment(allocation)
    rng = np.random.default_rng(seed)
    keys = np.array([arm_key(exp, v.name) for v in exp.variants], dtype=object)
    order = np.argsort(keys)
    shown, clicks = np.zeros(3, np.int64), np.zeros(3, np.int64)
    chosen, chance, reward = [], [], []
    for start in range(0, lists, SYNC):
        counts = ArmCounts(keys[order], shown[order], clicks[order], np.zeros(3, np.int64), start)
        share = shares(exp, counts) if exp.adaptive else np.full(3, 1 / 3)
        n = min(SYNC, lists - start)
        v = pick(rng.random(n), share)
        c = rng.binomial(K, TRUTH[v])
        np.add.at(shown, v, K)
        np.add.at(clicks, v, c)
        chosen.append(v)
        chance.append(share[v])
        reward.append(c / K)
    v, p, r = np.concatenate(chosen), np.concatenate(chance), np.concatenate(reward)
    names = np.array([x.name for x in exp.variants])
    log = pd.DataFrame(
        {"round": np.arange(len(v)).astype(str), "action": names[v], "propensity": p, "reward": r}
    )
    found = off_policy(exp, log, seed=seed)
    assert found is not None
    lo, hi = found.values["t2"]["snips"][1]
    verdict = adaptive_verdict(exp, "t2", found, [])
    return {
        "regret": float(K * (TRUTH.max() - TRUTH[v]).sum()),
        "clicks_per_1000": float(r.sum() * K / len(v) * 1000),
        "best_share": float((v == 2).mean()),
        "snips_t2_error": found.values["t2"]["snips"][0] - TRUTH[2],
        "covered": float(lo <= TRUTH[2] <= hi),
        "promoted": float(verdict.startswith("promote t2")),
    }


def _se(values: pd.Series) -> float:
    return float(values.std() / np.sqrt(len(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--lists", type=int, default=20_000)
    args = parser.parse_args()
    print(calibration_line())
    started = time.perf_counter()
    rows = []
    for allocation in ("fixed", "thompson"):
        runs = pd.DataFrame([run(allocation, args.lists, s) for s in range(args.seeds)])
        rows.append(
            {
                "allocation": allocation,
                "regret": f"{runs['regret'].mean():.0f} ± {_se(runs['regret']):.0f}",
                "clicks/1000 lists": f"{runs['clicks_per_1000'].mean():.1f}",
                "best variant's share": f"{runs['best_share'].mean():.1%}",
                "SNIPS(t2) bias": f"{runs['snips_t2_error'].mean():+.5f}",
                "SNIPS(t2) RMSE": f"{np.sqrt((runs['snips_t2_error'] ** 2).mean()):.5f}",
                "95% CI coverage": f"{runs['covered'].mean():.0%}",
                "verdict promotes t2": f"{runs['promoted'].mean():.0%}",
            }
        )
    print(f"{args.seeds} seeds x {args.lists} lists of {K}; true CTR {TRUTH.tolist()}")
    head = list(rows[0])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row[h] for h in head) + " |")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
