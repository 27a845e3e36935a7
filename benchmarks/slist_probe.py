"""Validation-only probe of ``slist`` (SLIST's transition model, BENCHMARKS §180, issue #15) beside
``transitions`` and EASE at their defaults on shape_sweep's leave-last-out samples.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/slist_probe.py \\
        --cases long/ml-100k/0,short/diginetica-sample/0 --out /tmp/slist
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/slist_probe.py \\
        --pool /tmp/slist

For each SHAPE/DATASET/SEED: shape_sweep's sample and split, then a validation split carved from
the TRAIN part by the same protocol (the test part is never read: these are design numbers), and
on it each variant's per-user NDCG@10 (``recsmith_lists``: ModelBundle's serving path), saved as
one JSON file per case. ``--pool`` reads them back and prints, per shape / data set and over all,
each variant's pooled NDCG and its ratio to ``transitions`` and to EASE with a 95 % paired
bootstrap interval over people (``ratio_interval``: a user in several samples is one unit).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from calibration import calibration_line
from shape_sweep import (
    SHAPES,
    events_of,
    ndcg_at_10,
    people_of,
    ratio_interval,
    recsmith_lists,
    sample,
    split,
)

#: (label, model, params): the references at their defaults, then slist around its default
VARIANTS: list[tuple[str, str, dict]] = [
    ("ease", "ease", {}),
    ("transitions", "transitions", {}),
    ("slit", "slist", {}),
    ("slit λ100", "slist", {"regularization": 100.0}),
    ("slit steps3", "slist", {"steps": 3}),
    ("slit steps10", "slist", {"steps": 10}),
    ("slit steps3 λ100", "slist", {"steps": 3, "regularization": 100.0}),
    ("slit steps10 λ100", "slist", {"steps": 10, "regularization": 100.0}),
    ("slist α.5 steps3", "slist", {"alpha": 0.5, "steps": 3}),
]


def run(case: str, out: Path, labels: set[str]) -> None:
    shape, dataset, seed = case.split("/")
    s = split(
        sample(events_of(dataset, int(seed)), SHAPES[shape], int(seed)), SHAPES[shape].protocol
    )
    inner = split(s.train, SHAPES[shape].protocol)
    facts: dict = {"case": case, "people": list(people_of(dataset, int(seed), inner.users))}
    for label, model, params in VARIANTS:
        if labels and label not in labels:
            continue
        cpu = time.process_time()
        per_user = ndcg_at_10(recsmith_lists(model, params)(inner), inner)
        spent = time.process_time() - cpu
        facts[label] = {"ndcg": per_user.tolist(), "cpu_s": spent}
        print(f"{case} {label}: validation NDCG@10 {per_user.mean():.4f} ({spent:.1f} s CPU)")
    (out / f"{case.replace('/', '_')}.json").write_text(json.dumps(facts))


def pool(directory: Path) -> None:
    cases = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    groups: dict[str, list[dict]] = {}
    for c in cases:
        groups.setdefault("/".join(c["case"].split("/")[:2]), []).append(c)
    groups["all"] = cases
    print(calibration_line())
    print(
        "| shape / data set | samples | variant | NDCG@10 | / transitions [95 %] | / EASE [95 %] |"
    )
    print("|---|---:|---|---:|---:|---:|")
    for name, group in groups.items():
        # a user id names one person within a data set: prefix it so data sets do not merge
        people = np.concatenate(
            [[f"{c['case'].split('/')[1]}:{p}" for p in c["people"]] for c in group]
        )

        def scores(label: str, group: list[dict] = group) -> np.ndarray:
            return np.concatenate([c[label]["ndcg"] for c in group])

        for label in [v[0] for v in VARIANTS if all(v[0] in c for c in group)]:
            a = scores(label)
            cells = [
                "{:.3f} [{:.3f}, {:.3f}]".format(*ratio_interval(a, scores(ref), people))
                for ref in ("transitions", "ease")
            ]
            cpu = sum(c[label]["cpu_s"] for c in group)
            print(
                f"| {name} | {len(group)} | {label} ({cpu:.0f} s CPU) | {a.mean():.4f} | "
                + " | ".join(cells)
                + " |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="", help="SHAPE/DATASET/SEED,...")
    parser.add_argument("--out", type=Path, default=Path("/tmp/slist_probe"))
    parser.add_argument("--variants", default="", help="only these labels (default: all)")
    parser.add_argument("--pool", type=Path, default=None, help="pool a directory's cases")
    args = parser.parse_args()
    if args.pool is not None:
        pool(args.pool)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for case in filter(None, args.cases.split(",")):
        run(case, args.out, set(filter(None, args.variants.split(","))))


if __name__ == "__main__":
    main()
