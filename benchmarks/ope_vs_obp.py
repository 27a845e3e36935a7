"""recsmith's off-policy estimators against the Open Bandit Pipeline's on the same logged data.

    PYTHONPATH=src OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ope_vs_obp.py \\
        --obp-python /tmp/obpvenv/bin/python

The logged data is obp's own ``SyntheticBanditDataset`` (binary rewards from its logistic reward
function, a softmax logging policy over the true expected reward, known propensities); the
target is ε-greedy on the true expected reward, so obp's ``calc_ground_truth_policy_value``
gives its true value. For each seed both libraries estimate the target's value:

* IPS (plain and with weights clipped at C), SNIPS: no reward model, so the same inputs must give
  the same numbers;
* DM, DR and Switch-DR (τ = C: it drops the largest weights) with **the same reward model**:
  recsmith's cross-fitted q̂ (computed here with ``recsmith.ope.reward_model`` exactly as
  ``estimate`` computes it: same folds, same seed) is handed to obp as
  ``estimated_rewards_by_reg_model``. If ``estimate``'s internal q̂ differed from the one handed
  over, DR would not agree;
* obp's DR with obp's own reward model (``RegressionModel``, logistic regression, 3-fold
  cross-fitting), to show what a different model changes (the definitions then differ).

obp 0.5.7 declares Python < 3.11 and pins old numpy/scipy/torch, so it does not belong in
recsmith's environment; this script runs obp in another interpreter (``--obp-python``, default
``$OBP_PYTHON``, else this one) over ``.npz`` files, and **skips with exit 0** when that
interpreter cannot import obp. How the venv used for BENCHMARKS was made (its ``Requires-Python``
and pins ignored; obp's estimators need none of the pinned versions' behaviour)::

    python3.11 -m venv /tmp/obpvenv
    pip download --no-deps --ignore-requires-python obp==0.5.7
    /tmp/obpvenv/bin/pip install --no-deps --ignore-requires-python obp-0.5.7.tar.gz
    /tmp/obpvenv/bin/pip install "numpy<2.3" "pandas<2.3" scipy scikit-learn matplotlib \\
        seaborn tqdm pyyaml mypy-extensions torch   # torch: only imported by obp.policy
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsmith.ope import estimate
from recsmith.ope.reward_model import Rows, assign_folds, cross_fitted

sys.path.insert(0, str(Path(__file__).parent))
from calibration import calibration_line

#: Runs inside obp's interpreter: ``generate`` writes the log, the target and obp's model-free
#: estimates; ``model`` adds DM/DR/Switch-DR on the q̂ recsmith computed.
OBP_SIDE = r"""
import json, sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from obp.dataset import SyntheticBanditDataset, logistic_reward_function
from obp.ope import (DirectMethod, DoublyRobust, InverseProbabilityWeighting, RegressionModel,
                     SelfNormalizedInverseProbabilityWeighting, SwitchDoublyRobust)

mode, folder, seeds = sys.argv[1], sys.argv[2], range(int(sys.argv[3]))
out = {}
for seed in seeds if mode == "generate" else ():
    rounds, actions, dim, beta, eps, clip = sys.argv[4:]
    path = f"{folder}/log{seed}.npz"
    data = SyntheticBanditDataset(n_actions=int(actions), dim_context=int(dim),
        reward_type="binary", reward_function=logistic_reward_function, beta=float(beta),
        random_state=int(seed))
    fb = data.obtain_batch_bandit_feedback(n_rounds=int(rounds))
    q = fb["expected_reward"]
    best = np.eye(q.shape[1])[np.argmax(q, axis=1)]
    dist = ((1 - float(eps)) * best + float(eps) / q.shape[1])[:, :, None]
    args = dict(reward=fb["reward"], action=fb["action"], pscore=fb["pscore"], action_dist=dist)
    own = RegressionModel(n_actions=q.shape[1], base_model=LogisticRegression(max_iter=1000))
    q_obp = own.fit_predict(context=fb["context"], action=fb["action"], reward=fb["reward"],
                            n_folds=3, random_state=int(seed))
    ci = InverseProbabilityWeighting().estimate_interval(n_bootstrap_samples=1000,
                                                         random_state=int(seed), **args)
    out[seed] = {
        "truth": float(data.calc_ground_truth_policy_value(q, dist)),
        "ips": float(InverseProbabilityWeighting().estimate_policy_value(**args)),
        "ips-clip": float(InverseProbabilityWeighting(lambda_=float(clip))
                          .estimate_policy_value(**args)),
        "snips": float(SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**args)),
        "dr-obp-model": float(DoublyRobust().estimate_policy_value(
            estimated_rewards_by_reg_model=q_obp, **args)),
        "ips-ci": [float(ci["95.0% CI (lower)"]), float(ci["95.0% CI (upper)"])],
    }
    np.savez(path, context=fb["context"], action=fb["action"], reward=fb["reward"],
             pscore=fb["pscore"], dist=dist[:, :, 0])
for seed in seeds if mode == "model" else ():
    tau = float(sys.argv[4])
    d, q = np.load(f"{folder}/log{seed}.npz"), np.load(f"{folder}/q{seed}.npz")["q"][:, :, None]
    args = dict(reward=d["reward"], action=d["action"], pscore=d["pscore"],
                action_dist=d["dist"][:, :, None], estimated_rewards_by_reg_model=q)
    out[seed] = {
        "dm": float(DirectMethod().estimate_policy_value(
            action_dist=args["action_dist"], estimated_rewards_by_reg_model=q)),
        "dr": float(DoublyRobust().estimate_policy_value(**args)),
        "switch-dr": float(SwitchDoublyRobust(lambda_=tau).estimate_policy_value(**args)),
    }
print(json.dumps(out))
"""

FOLDS, SEED = 5, 0  # recsmith's cross-fitting (``estimate``'s defaults)
NAMES = ("ips", "ips-clip", "snips", "dm", "dr", "switch-dr")


def obp_call(python: str, *args: object) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [python, "-c", OBP_SIDE, *map(str, args)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"obp side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def frames(data: np.lib.npyio.NpzFile) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The logged rounds and the target in ``recsmith ope estimate``'s formats (ids strings)."""
    n, k = data["dist"].shape
    rounds = np.array([f"r{i}" for i in range(n)], dtype=object)
    log = pd.DataFrame(
        {
            "round": rounds,
            "action": data["action"].astype(str).astype(object),
            "reward": data["reward"].astype(float),
            "propensity": data["pscore"],
            **{f"x_{j}": data["context"][:, j] for j in range(data["context"].shape[1])},
        }
    )
    target = pd.DataFrame(
        {
            "round": np.repeat(rounds, k),
            "action": np.tile(np.arange(k).astype(str).astype(object), n),
            "probability": data["dist"].reshape(-1),
        }
    )
    return log, target


def q_hat(data: np.lib.npyio.NpzFile) -> np.ndarray:
    """[rounds, actions]: recsmith's cross-fitted reward model at every action of every round,
    as ``estimate`` fits it (round i is code i, actions coded by their index, one position)."""
    n, k = data["dist"].shape
    context = data["context"].astype(np.float64)
    zeros = np.zeros(n, dtype=np.int64)
    logged = Rows(np.arange(n), data["action"].astype(np.int64), zeros, context)
    every = Rows(
        np.repeat(np.arange(n), k),
        np.tile(np.arange(k), n),
        np.zeros(n * k, dtype=np.int64),
        np.repeat(context, k, axis=0),
    )
    _, predicted = cross_fitted(
        logged, data["reward"].astype(float), [logged, every], assign_folds(n, FOLDS, SEED)
    )
    return predicted.reshape(n, k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--obp-python", default=os.environ.get("OBP_PYTHON", sys.executable))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--actions", type=int, default=10)
    parser.add_argument("--dim", type=int, default=5)
    parser.add_argument("--beta", type=float, default=3.0, help="logging softmax sharpness")
    parser.add_argument("--eps", type=float, default=0.3, help="target's ε (ε-greedy)")
    parser.add_argument("--clip", type=float, default=5.0, help="IPS weight cap compared")
    args = parser.parse_args()
    probe = subprocess.run(
        [args.obp_python, "-c", "import obp; print(obp.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode:
        print(f"skipped: {args.obp_python} cannot import obp (see the module docstring)")
        return
    print(calibration_line())
    print(f"obp {probe.stdout.strip()} via {args.obp_python}")
    rows, diffs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        generated = obp_call(
            args.obp_python, "generate", tmp, args.seeds, args.rounds, args.actions,
            args.dim, args.beta, args.eps, args.clip,
        )  # fmt: skip
        ours = {}
        for seed in range(args.seeds):
            data = np.load(Path(tmp) / f"log{seed}.npz")
            log, target = frames(data)
            report = estimate(log, target, switch_tau=args.clip, folds=FOLDS, seed=SEED)
            clipped = estimate(log, target, ("ips",), clip=args.clip, folds=FOLDS, seed=SEED)
            np.savez(Path(tmp) / f"q{seed}.npz", q=q_hat(data))
            ours[seed] = ({**report.values, "ips-clip": clipped.values["ips"]}, report)
        modelled = obp_call(args.obp_python, "model", tmp, args.seeds, args.clip)
    for seed in range(args.seeds):
        mine, report = ours[seed]
        theirs = {**generated[str(seed)], **modelled[str(seed)]}
        for name in NAMES:
            diffs.append((name, abs(mine[name] - float(theirs[name]))))
        rows.append((seed, float(theirs["truth"]), mine, theirs, report.intervals["ips"]))
    print(f"\n{args.seeds} seeds x {args.rounds:,} rounds, {args.actions} actions, dim {args.dim}")
    print("| seed | truth | estimator | recsmith | obp | abs diff |")
    print("|---|---|---|---|---|---|")
    for seed, truth, mine, theirs, _ in rows:
        for name in NAMES:
            diff = abs(mine[name] - float(theirs[name]))
            print(
                f"| {seed} | {truth:.5f} | {name} | {mine[name]:.9f} | "
                f"{float(theirs[name]):.9f} | {diff:.1e} |"
            )
        print(
            f"| {seed} | {truth:.5f} | dr, obp's own model | — | {theirs['dr-obp-model']:.6f} | — |"
        )
    frame = pd.DataFrame(diffs, columns=["estimator", "diff"])
    print("\nlargest abs difference per estimator over seeds:")
    print(frame.groupby("estimator", sort=False)["diff"].max().to_string())
    print("\nIPS 95 % interval, seed 0: recsmith (Poisson bootstrap over rounds, 1000) "
          f"{rows[0][4][0]:.5f}–{rows[0][4][1]:.5f}; obp (bootstrap, 1000) "
          f"{rows[0][3]['ips-ci'][0]:.5f}–{rows[0][3]['ips-ci'][1]:.5f}")  # fmt: skip
    truths = np.array([r[1] for r in rows])
    for name in ("ips", "snips", "dr"):
        err = np.array([r[2][name] for r in rows]) - truths
        print(f"recsmith {name}: mean error vs truth {err.mean():+.5f} (sd {err.std():.5f})")
    err = np.array([float(r[3]["dr-obp-model"]) for r in rows]) - truths
    print(f"obp dr (own model): mean error vs truth {err.mean():+.5f} (sd {err.std():.5f})")


if __name__ == "__main__":
    main()
