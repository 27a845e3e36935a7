"""EASE's ``recency`` for visitors scored at request time (#15): accuracy and cost.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \
        benchmarks/visitor_recency.py accuracy --seeds 0,1,2
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \
        benchmarks/visitor_recency.py cost --base /tmp/base/src --rounds 6

``accuracy``: the simulator's reviews at ``recency_probe``'s size (6,000 users × 4,000 items), a
fifth of the users (drawn by the seed) left out of training; each left-out user is a visitor
whose stored items are their reviews but the last, oldest first (as ``users_items_weighed``
reads them), asked through ``ModelBundle.recommend_for_items`` (the release's visitor path); the
last item is the truth (NDCG@10; a user whose last item is among the earlier ones, or unknown to
the release, scores 0 in every arm). One EASE solve per seed (``shared_fits``), scored at β = 0
(a visitor unweighted: main's behaviour, the solve is the same) and at calibration's β 1 and 3
(half 1 place). Per β: the difference to β = 0, the seeds pooled, with a paired 95 % bootstrap
interval over visitors (``recency_probe.interval``).

``cost``: CPU µs per visitor request of a single-model release's ``answer`` (the HTTP route's
call, its stored items as ``history``) and of a one-source pipeline's (``recent``), for a
release with β 0 and one with β 1, in this tree and in ``--base`` (another checkout's ``src``),
each a fresh process, in alternating rounds: base, this tree, base again (A/A). ``in-process``:
this tree alone, β 1 against β 0 (and β 0 again) answering the same blocks of visitors in turn in
one process: what the weighing itself adds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import calibration_line
from ranker_at_size import review_events
from recency_probe import interval

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.ease import EASE
from recsmith.models.shared_fits import SharedFits, sharing

USERS, ITEMS, K = 6000, 4000, 10
BETAS = (0.0, 1.0, 3.0)
LAMBDA = 250.0
DISCOUNT = 1.0 / np.log2(np.arange(2, K + 2))


def visitors(events: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, list[list[str]], list[str]]:
    """Training events without a fifth of the users; per left-out user (of 2+ events) their
    items but the last, oldest first, and the last (the truth)."""
    users = np.sort(events["user_id"].unique())
    out = set(np.random.default_rng(seed).choice(users, len(users) // 5, replace=False))
    left = events["user_id"].isin(out)
    order = events[left].sort_values(["user_id", "ts"], kind="stable")
    histories, truths = [], []
    for _, group in order.groupby("user_id", sort=True):
        items = group["item_id"].tolist()
        if len(items) >= 2:
            histories.append(items[:-1])
            truths.append(items[-1])
    return events[~left], histories, truths


def ndcg(listed: list[list[str]], truths: list[str]) -> np.ndarray:
    """Per visitor: 1 / log2(rank + 1) of the truth within the first K, else 0."""
    out = np.zeros(len(truths))
    for n, (items, truth) in enumerate(zip(listed, truths, strict=True)):
        if truth in items[:K]:
            out[n] = DISCOUNT[items.index(truth)]
    return out


def accuracy(seeds: list[int]) -> None:
    pooled: dict[float, list[np.ndarray]] = {b: [] for b in BETAS}
    people = []
    for seed in seeds:
        began = time.process_time()
        train, histories, truths = visitors(review_events(seed, USERS, ITEMS), seed)
        data = Interactions.from_events(train, dict(EventSettings().weights))
        fits = SharedFits(data)
        line = []
        for beta in BETAS:
            with sharing(fits, "visitors"):
                bundle = ModelBundle.train(data, EASE(regularization=LAMBDA, recency=beta))
            listed = bundle.recommend_for_items(histories, K).item_ids
            scores = ndcg([list(map(str, row)) for row in listed], truths)
            pooled[beta].append(scores)
            line.append(f"β{beta:g}={scores.mean():.4f}")
        people.append(np.array([f"{seed}:{n}" for n in range(len(truths))]))
        spent = time.process_time() - began
        print(
            f"seed {seed} items={data.n_items} visitors={len(truths)} {' '.join(line)}"
            f" cpu={spent:.0f}s",
            flush=True,
        )
    base = np.concatenate(pooled[0.0])
    everyone = np.concatenate(people)
    print(f"== pooled: {len(base)} visitors, β=0 NDCG@10 {base.mean():.4f}")
    for beta in BETAS[1:]:
        diff = np.concatenate(pooled[beta]) - base
        mean, low, high = interval(diff, everyone)
        print(f"   β {beta:g}: {mean:+.4f} [{low:+.4f}, {high:+.4f}] ({mean / base.mean():+.1%})")


def releases(where: Path) -> dict[str, Path]:
    """Per β: a single-model release and a one-source pipeline (trained once, seed 0's data)."""
    from recsmith.pipeline.artifact import save_pipeline, train_pipeline
    from recsmith.pipeline.config import PipelineConfig

    train, histories, _ = visitors(review_events(0, USERS, ITEMS), 0)
    data = Interactions.from_events(train, dict(EventSettings().weights))
    out = {}
    for beta in (0.0, 1.0):
        path = where / f"release-{beta:g}"
        if not path.exists():
            ModelBundle.train(data, EASE(regularization=LAMBDA, recency=beta)).save(path)
        out[f"release-{beta:g}"] = path
        path = where / f"pipeline-{beta:g}"
        if not path.exists():
            source = {"name": "ease", "model": "ease", "quota": 50}
            source["params"] = {"regularization": LAMBDA, "recency": beta}
            config = PipelineConfig.model_validate(
                {"retrieval": {"sources": [source]}, "ranking": {"enabled": False}}
            )
            frame = train.assign(event_id=[f"e{n}" for n in range(len(train))], context=None)
            save_pipeline(train_pipeline(config, frame, dict(EventSettings().weights)), path)
        out[f"pipeline-{beta:g}"] = path
    (where / "histories.json").write_text(json.dumps(histories[:400]))
    return out


def asker(path: Path) -> Callable[[list[str]], object]:
    """One visitor request to the release at ``path``, as the HTTP route makes it."""
    if path.name.startswith("pipeline"):
        from recsmith.pipeline.artifact import load_pipeline

        pipeline = load_pipeline(path)
        # the online state's items (``serving.recent_items`` 20), newest first
        return lambda history: pipeline.answer(["visitor"], K, recent=[history[::-1][:20]])
    bundle = ModelBundle.load(path)
    # the weighed stored items, oldest first: history and seen
    return lambda history: bundle.answer(["visitor"], K, extra_seen=[history], history=[history])


def time_requests(path: Path, histories: list[list[str]], repeats: int) -> float:
    """CPU µs per visitor request of the release at ``path`` (one request a history, each
    history asked ``repeats`` times after one warm-up pass)."""
    ask = asker(path)
    for history in histories:
        ask(history)
    began = time.process_time()
    for _ in range(repeats):
        for history in histories:
            ask(history)
    return (time.process_time() - began) / (repeats * len(histories)) * 1e6


def cost(base: Path, rounds: int, repeats: int, where: Path) -> None:
    paths = releases(where)
    mine = Path(__file__).resolve().parents[1] / "src"
    trees = {"base": base, "branch": mine, "base-again": base}
    results: dict[str, dict[str, list[float]]] = {k: {t: [] for t in trees} for k in paths}
    for r in range(rounds):
        for name, path in paths.items():
            for tree, src in trees.items():
                env = {**os.environ, "PYTHONPATH": f"{src}:{Path(__file__).parent}"}
                got = subprocess.run(
                    [sys.executable, __file__, "worker", str(path), str(where), str(repeats)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                results[name][tree].append(float(got.stdout.split()[-1]))
        print(
            f"round {r}: "
            + " ".join(
                f"{n}:{'/'.join(f'{v[-1]:.0f}' for v in t.values())}" for n, t in results.items()
            ),
            flush=True,
        )
    print("== CPU µs per visitor request, median over rounds (base, branch, base again):")
    for name, by_tree in results.items():
        med = {t: float(np.median(v)) for t, v in by_tree.items()}
        b = np.array(by_tree["base"])
        ratio = np.array(by_tree["branch"]) / b
        aa = np.array(by_tree["base-again"]) / b
        print(
            f"   {name:>12}: base {med['base']:.0f}, branch {med['branch']:.0f}, base again "
            f"{med['base-again']:.0f}; branch/base per round median {np.median(ratio):.3f} "
            f"[{ratio.min():.3f}, {ratio.max():.3f}], A/A {np.median(aa):.3f} "
            f"[{aa.min():.3f}, {aa.max():.3f}]"
        )


def in_process(rounds: int, where: Path) -> None:
    """This tree only, one process: per kind (release, pipeline), β 0, β 1 and β 0 loaded a
    second time (A/A) answer the same blocks of 50 visitors in turn, round after round; CPU µs
    per request summed per arm. What weighing a visitor's items adds to a request, with less
    noise than processes compared across rounds."""
    paths = releases(where)
    histories = json.loads((where / "histories.json").read_text())
    for kind in ("release", "pipeline"):
        arms = {
            "β0": asker(paths[f"{kind}-0"]),
            "β1": asker(paths[f"{kind}-1"]),
            "β0 again": asker(paths[f"{kind}-0"]),
        }
        spent = {arm: 0.0 for arm in arms}
        for history in histories[:50]:  # warm-up
            for ask in arms.values():
                ask(history)
        for _ in range(rounds):
            for start in range(0, len(histories), 50):
                block = histories[start : start + 50]
                for arm, ask in arms.items():
                    began = time.process_time()
                    for history in block:
                        ask(history)
                    spent[arm] += time.process_time() - began
        per = {arm: v / (rounds * len(histories)) * 1e6 for arm, v in spent.items()}
        print(
            f"   {kind}: "
            + ", ".join(f"{arm} {v:.0f} µs" for arm, v in per.items())
            + f"; β1/β0 {per['β1'] / per['β0']:.3f}, A/A {per['β0 again'] / per['β0']:.3f}",
            flush=True,
        )


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        path, where, repeats = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
        histories = json.loads((where / "histories.json").read_text())
        print(f"{time_requests(path, histories, repeats):.2f}")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("accuracy", "cost", "in-process"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--base", type=Path, default=None, help="the other tree's src")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/visitor_recency"))
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    if args.what == "accuracy":
        accuracy([int(x) for x in args.seeds.split(",")])
    elif args.what == "in-process":
        args.work.mkdir(parents=True, exist_ok=True)
        in_process(args.rounds, args.work)
    else:
        assert args.base is not None, "--base: the other tree's src"
        args.work.mkdir(parents=True, exist_ok=True)
        cost(args.base, args.rounds, args.repeats, args.work)


if __name__ == "__main__":
    main()
