"""Off-policy evaluation on the live simulation: an exploring pipeline's log estimates the
deterministic pipeline's click-through, checked against the truth over many seeds.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ope_live_sim.py

A simulated shop (``recsmith.simulate``, 1,500 users, 500 items) is trained once (item-kNN and
trending, no ranker). Per seed, ``--requests`` simulated users ask for lists of 10 from the
pipeline **serving with an ``[explore]`` policy** (the logging policy, through
``Pipeline.answer`` as the server calls it, propensities as the engine logs them), and click by
the truth (position p examined with 1/√p, clicked with sigmoid(−2 + 0.37·affinity), the click
model of ``explore_sim.py``). The log (round, position, action, reward, propensity: what
``recsmith decisions export --for-ope click`` writes) then estimates the **target**, the same
pipeline without exploration (its deterministic lists for the same requests), with
``recsmith.ope.estimate``. The target's true value is what it earns served to those same requests:
the mean over (request, position) of examination × click probability of its item there, from
the simulator's truth (the estimand of a per-impression estimate, without click-sampling noise).

Logging policies: ``softmax`` (Plackett–Luce over the ranked scores at temperature 0.5, every
position random; position 1's propensity exact, later ones Monte Carlo over ``samples`` prefixes
as the engine states) and ``epsilon`` (slot 3 shows a long-tail item with probability 0.2; exact
propensities, the other slots as the target's). Reported per estimator over the seeds: bias
(± its standard error), standard deviation, RMSE and the coverage of the 95 % bootstrap interval.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from calibration import calibration_line
from explore_sim import click_probability, with_policy

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events, validate_items
from recsmith.exploration.explorer import ExploreRequest
from recsmith.ope import estimate
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline
from recsmith.simulate import Simulation, simulate

K, BATCH = 10, 64
EXAMINED = 1 / np.sqrt(np.arange(1, K + 1))
LOGGING: dict[str, dict[str, object]] = {
    "softmax T=0.5": {"policy": "softmax", "temperature": 0.5},
    "epsilon 0.2 (slot 3, long tail)": {
        "policy": "epsilon",
        "epsilon": 0.2,
        "slots": [3],
        "pool": "long_tail",
    },
}
ESTIMATORS = ("ips", "snips", "dm", "dr")
CLIPS = (5.0, 20.0)


def shop() -> tuple[Simulation, Pipeline]:
    sim = simulate(n_users=1500, n_items=500, seed=5)
    (events, _), (items, _) = (
        validate_events(sim.events, EventSettings()),
        validate_items(sim.items),
    )
    config = PipelineConfig.model_validate(
        {
            "retrieval": {
                "sources": [
                    {"name": "knn", "model": "itemknn", "quota": 60},
                    {"name": "trending", "model": "trending", "quota": 30},
                ]
            },
            "ranking": {"enabled": False},
        }
    )
    return sim, train_pipeline(config, events, dict(EventSettings().weights), items=items)


def grid(rows: list[np.ndarray]) -> np.ndarray:
    """[n, K] object array of item ids (None where a list is shorter)."""
    out = np.full((len(rows), K), None, dtype=object)
    for q, row in enumerate(rows):
        out[q, : len(row)] = row
    return out


def one_seed(
    sim: Simulation, logging: Pipeline, target: Pipeline, requests: int, seed: int
) -> tuple[dict[str, tuple[float, float, float]], float, float]:
    """(per estimator: value, lo, hi), the target's true value, the effective sample size."""
    rng = np.random.default_rng(seed)
    user_ids = sim.user_map.to_external(np.arange(len(sim.user_map)))
    users = user_ids[rng.integers(0, len(user_ids), requests)]
    rids = np.array([f"s{seed}-r{n}" for n in range(requests)], dtype=object)
    shown, chances = [], []
    for lo in range(0, requests, BATCH):
        answer = logging.answer(
            users[lo : lo + BATCH], K, explore=ExploreRequest(rids[lo : lo + BATCH])
        )
        shown += list(answer.lists.item_ids)
        chances += answer.propensities
    logged = grid(shown)
    propensity = np.zeros((requests, K))
    for q, row in enumerate(chances):
        propensity[q, : len(row)] = row
    click = click_probability(sim, users, logged) * EXAMINED
    reward = (rng.random(click.shape) < click).astype(float)
    ranked = grid(list(target.answer(users, K).lists.item_ids))
    truth = float((click_probability(sim, users, ranked) * EXAMINED)[ranked != None].mean())  # noqa: E711
    has = logged != None  # noqa: E711
    q, p = np.nonzero(has)
    log = pd.DataFrame(
        {
            "round": rids[q],
            "position": (p + 1).astype(str).astype(object),
            "action": logged[q, p],
            "reward": reward[q, p],
            "propensity": propensity[q, p],
        }
    )
    tq, tp = np.nonzero(ranked != None)  # noqa: E711
    target_rows = pd.DataFrame(
        {
            "round": rids[tq],
            "position": (tp + 1).astype(str).astype(object),
            "action": ranked[tq, tp],
            "probability": 1.0,
        }
    )
    report = estimate(log, target_rows, ESTIMATORS, bootstrap=500, seed=seed)
    out = {n: (report.values[n], *report.intervals[n]) for n in ESTIMATORS}
    for clip in CLIPS:
        clipped = estimate(log, target_rows, ("ips",), clip=clip, bootstrap=500, seed=seed)
        out[f"ips, clip {clip:g}"] = (clipped.values["ips"], *clipped.intervals["ips"])
    return out, truth, report.ess / len(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    print(calibration_line())
    started = time.perf_counter()
    sim, pipeline = shop()
    target = with_policy(pipeline, None)
    for name, policy in LOGGING.items():
        logging = with_policy(pipeline, policy)
        found: dict[str, list[tuple[float, float, float]]] = {}
        truths, ess = [], []
        for seed in range(args.seeds):
            values, truth, share = one_seed(sim, logging, target, args.requests, seed)
            truths.append(truth)
            ess.append(share)
            for est, triple in values.items():
                found.setdefault(est, []).append(triple)
        truth = np.array(truths)
        print(
            f"\nlogging: {name}; {args.seeds} seeds x {args.requests:,} lists of {K}; target's "
            f"true value {truth.mean():.5f} (sd over seeds {truth.std():.5f}); ESS "
            f"{100 * np.mean(ess):.1f} % of impressions"
        )
        print("| estimator | mean error (bias ± s.e.) | sd | RMSE | 95 % CI coverage |")
        print("|---|---|---|---|---|")
        for est, triples in found.items():
            v, lo, hi = (np.array(x) for x in zip(*triples, strict=True))
            err = v - truth
            se = err.std(ddof=1) / np.sqrt(len(err))
            cover = np.mean((lo <= truth) & (truth <= hi))
            print(
                f"| {est} | {err.mean():+.5f} (± {se:.5f}) | {err.std(ddof=1):.5f} | "
                f"{np.sqrt(np.mean(err**2)):.5f} | {100 * cover:.0f} % |"
            )
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
