"""Paired comparison of two runs' per-user test NDCG@10 (``choice_ab.py``'s ``--out`` or
``shape_sweep.py``'s ``--save``): per sample, and pooled over the samples named, each user once.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/choice_compare.py /tmp/ab/base \\
        /tmp/ab/new short-diginetica-sample-15 short-diginetica-sample-16 ...

Each side reads ``SAMPLE.npy`` (the pipeline's scores), or ``SAMPLE~LABEL.npy`` with
``--base-list`` / ``--new-list LABEL`` (``shape_sweep.save``'s other lists: ``best-peer``,
``popular``, ``EASE``, …), so one saved directory on both sides pairs its pipeline with its own
best tuned peer. A sample present on one side only is reported missing, not compared; where both
sides saved their users (``SAMPLE.json``) and these differ, it is reported and not compared (a
score pairs with the same user's only). Differences are new − base with a 95 % paired bootstrap
interval over test users (``shape_sweep.RESAMPLES`` resamples, seeded), ratios new / base with
``shape_sweep.ratio_interval``'s; "identical" where every user's score is the same on both sides.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from shape_sweep import RESAMPLES, ratio_interval

from recsmith.evaluation.significance import bootstrap_ci


def row(name: str, base: np.ndarray, new: np.ndarray) -> str:
    """One markdown row: users, both means, the paired difference and ratio with intervals."""
    diff = new - base
    if not diff.any():
        return f"| {name} | {len(base)} | {base.mean():.4f} | {new.mean():.4f} | identical | 1 |"
    low, high = bootstrap_ci(diff, n_resamples=RESAMPLES, seed=0)
    ratio, r_low, r_high = ratio_interval(new, base)
    return (
        f"| {name} | {len(base)} | {base.mean():.4f} | {new.mean():.4f} | "
        f"{diff.mean():+.4f} [{low:+.4f}, {high:+.4f}] | {ratio:.3f} [{r_low:.3f}, {r_high:.3f}] |"
    )


def users_of(directory: Path, sample: str) -> list[str] | None:
    """The users a ``shape_sweep.py --save`` run scored, in its arrays' order; None where the
    run saved none (``choice_ab.py``)."""
    facts = directory / f"{sample}.json"
    return json.loads(facts.read_text())["users"] if facts.exists() else None


def compare(
    base_dir: Path, new_dir: Path, samples: list[str], base_list: str = "", new_list: str = ""
) -> list[str]:
    """The table's lines: each sample's row (or why it is not compared), then the pooled row
    where more than one sample was compared."""
    lines = [
        "| sample | test users | base | new | new − base | new / base |",
        "|---|---:|---:|---:|---|---|",
    ]
    pooled: list[tuple[np.ndarray, np.ndarray]] = []
    for name in samples:
        paths = [
            d / (f"{name}~{which}.npy" if which else f"{name}.npy")
            for d, which in ((base_dir, base_list), (new_dir, new_list))
        ]
        if not all(p.exists() for p in paths):
            lines.append(
                f"| {name} | missing: {', '.join(str(p) for p in paths if not p.exists())} |"
            )
            continue
        users = [users_of(base_dir, name), users_of(new_dir, name)]
        if None not in users and users[0] != users[1]:
            lines.append(f"| {name} | users differ: not paired |")
            continue
        base, new = (np.load(p) for p in paths)
        pooled.append((base, new))
        lines.append(row(name, base, new))
    if len(pooled) > 1:
        base, new = (np.concatenate(side) for side in zip(*pooled, strict=True))
        lines.append(row(f"pooled ({len(pooled)} samples)", base, new))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("samples", nargs="+", help="SHAPE-DATASET-SEED names (the .npy stems)")
    parser.add_argument("--base-list", default="", help="the base side's LABEL (default pipeline)")
    parser.add_argument("--new-list", default="", help="the new side's LABEL (default pipeline)")
    args = parser.parse_args()
    lines = compare(args.base, args.new, args.samples, args.base_list, args.new_list)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
