"""Many ``shape_sweep`` samples pooled by person, read against each peer and on the weak case
alone, and how many users of a data set return after a time cut (BENCHMARKS §116).

    # record (one process, samples one at a time; a sample already recorded is skipped)
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/shape_pool.py \
        record OUT market/ml-100k/80 sparse/ml-100k/80 …
    # read: pooled ratios per shape / data set, every sample and the weak ones alone
    … benchmarks/shape_pool.py read OUT
    # who returns after the 0.8 time cut, in the whole data set and in its samples
    … benchmarks/shape_pool.py returning ml-100k ml-latest-small simulated --seed 80

A MovieLens sample at the marketplace shape holds 40-70 test users, so one sample's ratio spans
0.3-3x. Pooling seeds helps only up to the people the data set has: every ml-100k sample draws
from the same 943 users, of whom only ~110 rate both before and after the 0.8 cut
(``returning``), so ``read`` counts distinct people and resamples each person's rows as one
unit (``shape_sweep.ratio_interval``). ``shape_sweep.pooled`` reads the pipeline against each
sample's best peer *on test*, the best of three; ``read`` also reads it against each peer family
as tuned on validation, and, on the samples where calibration said its evidence was weak (it
ships popularity there, §104), popularity's own standing against every tuned model.
"""

from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import shape_sweep as sw

#: Columns a pooled ratio is read against: popular, each sample's best peer on test, each tuned
#: peer family (its grid's validation pick, named ``FAMILY {params}`` in ``Row.scores``), and
#: recsmith's own single sources at their defaults.
AGAINST = ["popular", "best peer", *sw.PEERS, *(f"own {m}" for m in sw.OWN)]
WEAK = "EVIDENCE WEAK"  # what calibration's line says where no protocol decides


def column(row: sw.Row, name: str) -> np.ndarray:
    """``row``'s per-user scores of ``name``: "best peer" is the sample's best on test; a peer
    family is its tuned configuration, whatever parameters validation picked on that sample."""
    if name == "best peer":
        return row.scores[row.best_peer]
    hits = [n for n in row.scores if n == name or n.startswith(f"{name} {{")]
    if len(hits) != 1:
        raise ValueError(f"{name!r}: {len(hits)} columns of {sorted(row.scores)}")
    return row.scores[hits[0]]


def people(rows: Sequence[sw.Row]) -> np.ndarray:
    """Who each pooled row is, the data set in the name (ml-100k's user 5 is not
    ml-latest-small's)."""
    return np.concatenate([[f"{r.dataset}/{p}" for p in r.people] for r in rows]).astype(object)


def pooled_ratio(
    rows: Sequence[sw.Row], mine: str = "pipeline", other: str = "popular"
) -> tuple[float, float, float]:
    """Summed ``mine`` over summed ``other`` on every row of ``rows`` with its paired bootstrap
    interval over people (each person's rows one unit)."""
    a = np.concatenate([column(r, mine) for r in rows])
    b = np.concatenate([column(r, other) for r in rows])
    return sw.ratio_interval(a, b, people(rows))


def ships(row: sw.Row) -> str:
    """The source calibration served, from its line (``serving NAME``)."""
    found = re.search(r"\): serving ([^ (;]+)", row.said)
    return found.group(1) if found else "?"


def _cell(ratio: tuple[float, float, float]) -> str:
    return f"{ratio[0]:.2f} [{ratio[1]:.2f}, {ratio[2]:.2f}]"


def table(groups: dict[str, list[sw.Row]], mine: str) -> None:
    """One markdown row per group: its samples, rows, people, what shipped, and ``mine`` against
    each of ``AGAINST`` pooled."""
    against = [a for a in AGAINST if a != mine]
    head = " | ".join(against)
    print(f"| {mine} against → | samples | test rows | people | ships | {head} |")
    print("|---|---:|---:|---:|---|" + "---:|" * len(against))
    for label, rows in groups.items():
        shipped: dict[str, int] = {}
        for r in rows:
            shipped[ships(r)] = shipped.get(ships(r), 0) + 1
        said = ", ".join(f"{k} {v}" for k, v in sorted(shipped.items()))
        cells = " | ".join(_cell(pooled_ratio(rows, mine, o)) for o in against)
        count = f"{len(rows)} | {sum(len(r.people) for r in rows):,} | {len(set(people(rows))):,}"
        print(f"| {label} | {count} | {said} | {cells} |")


def read(folder: Path) -> None:
    rows = [pickle.loads(p.read_bytes()) for p in sorted(folder.glob("*.pkl"))]
    groups: dict[str, list[sw.Row]] = {}
    for r in sorted(rows, key=lambda r: (r.shape, r.dataset, r.seed)):
        groups.setdefault(f"{r.shape} / {r.dataset}", []).append(r)
    every = {**groups, "all": rows}
    print("\nThe shipped pipeline, every sample (seeds: " + _seeds(groups) + "):")
    table(every, "pipeline")
    weak = {k: [r for r in v if WEAK in r.said] for k, v in every.items()}
    weak = {f"{k} (weak)": v for k, v in weak.items() if v}
    print("\nThe weak samples only (popularity ships): popular against every other list:")
    table(weak, "popular")


def _seeds(groups: dict[str, list[sw.Row]]) -> str:
    return "; ".join(f"{k} {','.join(str(r.seed) for r in v)}" for k, v in groups.items())


def record(folder: Path, plan: Sequence[str], run: Callable[..., sw.Row] = sw.run_one) -> None:
    """Run each ``shape/dataset/seed`` of ``plan`` in turn, print its table and keep its Row."""
    folder.mkdir(parents=True, exist_ok=True)
    print(sw.calibration_line(), flush=True)
    for entry in plan:
        shape, dataset, seed = entry.split("/")
        path = folder / f"{shape}-{dataset}-{seed}.pkl"
        if not path.exists():
            row = run(shape, dataset, int(seed), None)
            sw.report(row)
            path.write_bytes(pickle.dumps(row))


def returning(events: pd.DataFrame) -> dict[str, int]:
    """Users active after the sample's 0.8 time cut: those known before it (``returning``: the
    only ones a time cut can test) and those new after it, and the test users ``split`` keeps
    (returning with an item new to them)."""
    cut = np.quantile(events["ts"], 0.8)
    before = set(events.loc[events["ts"] < cut, "user_id"])
    after = set(events.loc[events["ts"] >= cut, "user_id"])
    return {
        "users": events["user_id"].nunique(),
        "after cut": len(after),
        "returning": len(after & before),
        "new": len(after - before),
        "test users": len(sw.split(events, "temporal").users),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("plan", nargs="+", help="shape/dataset/seed")
    sub.add_parser("read").add_argument("out", type=Path)
    ret = sub.add_parser("returning")
    ret.add_argument("datasets", nargs="+")
    ret.add_argument("--seed", type=int, default=80)
    args = parser.parse_args()
    if args.command == "record":
        record(args.out, args.plan)
    elif args.command == "read":
        read(args.out)
    else:
        print("| data set | sample | events | users | after cut | returning | new | test users |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for name in args.datasets:
            events = sw.events_of(name, args.seed)
            for label, part in [("whole", events)] + [
                (shape, sw.sample(events, sw.SHAPES[shape], args.seed))
                for shape in ("market", "sparse")
            ]:
                counts = " | ".join(f"{v:,}" for v in returning(part).values())
                print(f"| {name} | {label} | {len(part):,} | {counts} |")


if __name__ == "__main__":
    main()
