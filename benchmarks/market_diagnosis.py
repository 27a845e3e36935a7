"""Where the default loses on the marketplace / sparse shapes: per sample, what calibration
shipped, its test NDCG@10 against the best tuned peer, against recsmith's ``popular``, and against
each option of its own final round — every single source alone and the fused order after its
grid (BENCHMARKS §174, issue #15). So a loss reads as the choice rule's (an option on test beats
the shipped one), a source's quality (no option reaches the peer), or the candidate set's (the
peer's family is not among the options, or popularity beats them all).

``run``: ``choice_oracle.py record``'s pickle for each sample, plus the tuned peers and
``popular`` (shape_sweep's ``tuned``, per user) in ``OUT/SHAPE-DATASET-SEED.peers.pkl``.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/market_diagnosis.py run --samples market/simulated/0,sparse/ml-100k/1 --out OUT

``table``: one markdown row per sample (ratios with paired 95 % bootstrap intervals over users),
then pooled figures per shape and data set.

    … market_diagnosis.py table OUT
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from choice_oracle import record
from shape_sweep import (
    SHAPES,
    events_of,
    ndcg_at_10,
    ratio_interval,
    recsmith_lists,
    sample,
    split,
    tuned,
)

BAR = 1.05  # issue #15's: the pipeline at this multiple of the best tuned peer


def run(samples: str, out: Path) -> None:
    """Record each sample's oracle table, then its tuned peers and ``popular`` on test."""
    out.mkdir(parents=True, exist_ok=True)
    for spec in samples.split(","):
        shape, dataset, seed = spec.split("/")
        stem = f"{shape}-{dataset}-{seed}"
        if not (out / f"{stem}.pkl").exists():
            record(spec, out)
        if (out / f"{stem}.peers.pkl").exists():
            continue
        started = time.process_time()
        s = split(sample(events_of(dataset, int(seed)), SHAPES[shape], int(seed)),
                  SHAPES[shape].protocol)  # fmt: skip
        peers = {f"{p} {params}": v for p, (v, params) in tuned(s, SHAPES[shape].protocol).items()}
        peers["popular"] = ndcg_at_10(recsmith_lists("popular", {})(s), s)
        with open(out / f"{stem}.peers.pkl", "wb") as f:
            pickle.dump(peers, f)
        said = ", ".join(f"{n} {v.mean():.4f}" for n, v in peers.items())
        print(f"{spec} peers: {said} [{time.process_time() - started:.0f} CPU s]", flush=True)


def _ratio(a: np.ndarray, b: np.ndarray) -> str:
    r, lo, hi = ratio_interval(a, b)
    return f"{r:.3f} [{lo:.3f}, {hi:.3f}]"


def _loss(shipped: np.ndarray, options: dict[str, np.ndarray], peer: np.ndarray) -> str:
    """Where a sample below 1.05× the best tuned peer loses: ``rule`` where an option of the
    final round beats the shipped one on test beyond noise (the choice), ``sources`` where no
    option's test mean reaches the peer's (the candidates), else ``noise`` (a better option by
    its point estimate only)."""
    if shipped.mean() >= BAR * peer.mean():
        return "met"
    if any(ratio_interval(v, shipped)[1] > 1 for v in options.values()):
        return "rule"
    if max(v.mean() for v in options.values()) < peer.mean():
        return "sources"
    return "noise"


def table(out: Path) -> None:
    """Print the per-sample rows and the pooled figures."""
    print(
        "| sample | test u | shipped (reason) | shipped | best peer | / best peer | / popular "
        "| options on test (best first) | best option / shipped | loss |"
    )
    print("|---|---:|---|---:|---|---|---|---|---|---|")
    pooled: dict[tuple[str, str], list[np.ndarray]] = {}
    for path in sorted(out.glob("*-*-*.pkl"), key=_order):
        if path.name.endswith(".peers.pkl") or not path.with_suffix(".peers.pkl").exists():
            continue
        with open(path, "rb") as f:
            d = pickle.load(f)
        with open(path.with_suffix(".peers.pkl"), "rb") as f:
            peers = pickle.load(f)
        shipped, options = d["shipped"], d["test"]
        tuned_only = {n: v for n, v in peers.items() if n != "popular"}
        best = max(tuned_only, key=lambda n: tuned_only[n].mean())
        ranked = sorted(options, key=lambda n: -options[n].mean())
        listed = ", ".join(f"{n} {options[n].mean():.4f}" for n in ranked)
        reason = d["reason"].split(";")[0][:60]
        print(
            f"| {path.stem} | {len(shipped)} | {d['chosen']} ({reason}) | {shipped.mean():.4f} "
            f"| {best} {peers[best].mean():.4f} | {_ratio(shipped, peers[best])} "
            f"| {_ratio(shipped, peers['popular'])} | {listed} "
            f"| {_ratio(options[ranked[0]], shipped)} | {_loss(shipped, options, peers[best])} |"
        )
        shape, dataset, _ = _split(path.stem)
        pooled.setdefault((shape, dataset), [[], [], [], []])
        for n, v in enumerate((shipped, peers[best], peers["popular"], options[ranked[0]])):
            pooled[(shape, dataset)][n].append(v)
    print(
        "\n| shape / data set | test u | shipped / best peer | / popular | best option / shipped |"
    )
    print("|---|---:|---|---|---|")
    for (shape, dataset), parts in sorted(pooled.items()):
        shipped, peer, popular, option = (np.concatenate(p) for p in parts)
        print(
            f"| {shape} / {dataset} | {len(shipped)} | {_ratio(shipped, peer)} "
            f"| {_ratio(shipped, popular)} | {_ratio(option, shipped)} |"
        )


def _split(stem: str) -> tuple[str, str, str]:
    """``market-ml-100k-3`` → ("market", "ml-100k", "3"): data set names hold dashes."""
    shape, rest = stem.split("-", 1)
    dataset, seed = rest.rsplit("-", 1)
    return shape, dataset, seed


def _order(path: Path) -> tuple[str, str, int]:
    shape, dataset, seed = _split(path.name.split(".")[0])
    return shape, dataset, int(seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run")
    go.add_argument("--samples", required=True, help="SHAPE/DATASET/SEED,…")
    go.add_argument("--out", type=Path, required=True)
    tab = sub.add_parser("table")
    tab.add_argument("out", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.samples, args.out)
    else:
        table(args.out)


if __name__ == "__main__":
    sys.exit(main())
