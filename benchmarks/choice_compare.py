"""Paired comparison of two ``choice_ab.py`` runs (the per-user test NDCG@10 each saved under its
``--out``): per sample, and pooled over the samples named, each user once.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/choice_compare.py /tmp/ab/base \\
        /tmp/ab/new short-diginetica-sample-15 short-diginetica-sample-16 ...

A sample present on one side only is reported missing, not compared. Differences are new − base
with a 95 % paired bootstrap interval over test users (``shape_sweep.RESAMPLES`` resamples,
seeded); "identical" where every user's score is the same on both sides.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from shape_sweep import RESAMPLES

from recsmith.evaluation.significance import bootstrap_ci


def row(name: str, base: np.ndarray, new: np.ndarray) -> str:
    """One markdown row: users, both means, and the paired difference with its interval."""
    diff = new - base
    if not diff.any():
        said = "identical"
    else:
        low, high = bootstrap_ci(diff, n_resamples=RESAMPLES, seed=0)
        said = f"{diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]"
    return f"| {name} | {len(base)} | {base.mean():.4f} | {new.mean():.4f} | {said} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("samples", nargs="+", help="SHAPE-DATASET-SEED names (the .npy stems)")
    args = parser.parse_args()
    print("| sample | test users | base | new | new − base |\n|---|---:|---:|---:|---|")
    pooled: list[tuple[np.ndarray, np.ndarray]] = []
    for name in args.samples:
        paths = [args.base / f"{name}.npy", args.new / f"{name}.npy"]
        if not all(p.exists() for p in paths):
            print(f"| {name} | missing: {', '.join(str(p) for p in paths if not p.exists())} |")
            continue
        base, new = (np.load(p) for p in paths)
        pooled.append((base, new))
        print(row(name, base, new))
    if len(pooled) > 1:
        base, new = (np.concatenate(side) for side in zip(*pooled, strict=True))
        print(row(f"pooled ({len(pooled)} samples)", base, new))


if __name__ == "__main__":
    main()
