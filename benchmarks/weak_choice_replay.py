"""The base single source where no validation protocol decides, replayed on ``choice_oracle.py``
records: what the recording tree shipped against what this tree's rule picks, each on test, and
both against popularity (BENCHMARKS §104).

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/weak_choice_replay.py /tmp/oracle/*.pkl

A record holds calibration's last ``deciding`` call (every single source's per-user validation
scores), the fused order as it competed last, the shipped per-user test scores and every
configuration's test scores (``choice_oracle.py record``, run on the base tree). This tree's
pick is ``calibration.best_single_source`` where no protocol decides (``best_single`` where one
does), then ``prefer`` against the fused order: exact where the rule changes only that choice
(the ranker and a sequential source, tried after it, are not replayed: run ``choice_ab.py`` on
the samples whose choice moves; a record holds no user ids, so its protocols' users are pooled as
distinct people, where calibration pools each user once: the replay's pooled interval can be
narrower than the tree's). Per sample: the protocols' users and whether each decides,
both picks with test NDCG@10 as a ratio of popularity's (95 % paired bootstrap over test users,
``shape_sweep.ratio_interval``); pooled: this tree − base over every test user of the samples
(each user once), with its interval.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
from choice_oracle import final_round
from shape_sweep import RESAMPLES, ratio_interval

from recsmith.evaluation.significance import bootstrap_ci
from recsmith.pipeline.calibration import best_single_source
from recsmith.pipeline.robust_choice import best_single, prefer


def replayed(record: dict) -> tuple[str, bool, list[str]]:
    """This tree's final choice on ``record``, whether the evidence was weak, and each
    protocol's users and verdict."""
    singles, refs, said, seed, fused = final_round(record["calls"])
    weak = not any(s["decides"] for s in said)
    if weak:  # the default file lists no popularity: calibration adds it (singles[0])
        best = best_single_source(singles, refs, frozenset(t.name for t in singles[1:]), seed)[0]
    else:
        best = best_single(singles, refs, seed)
    protocols = [
        f"{p['validation_users']} {'decides' if s['decides'] else 'no'}"
        for p, s in zip(record["protocols"], said, strict=True)
    ]
    return prefer(best, "", fused, refs, seed)[0].name, weak, protocols


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path)
    args = parser.parse_args()
    print(
        "| sample | test users | validation users (cuts; latest) | base ships | base / popular "
        "| this tree ships | this tree / popular |\n|---|---:|---|---|---|---|---|"
    )
    base_all, new_all = [], []
    for path in sorted(args.records):
        with open(path, "rb") as f:
            record = pickle.load(f)
        pick, weak, protocols = replayed(record)
        base, new, popular = record["shipped"], record["test"][pick], record["test"]["popularity"]
        base_all.append(base)
        new_all.append(new)
        cells = []
        for name, scores in ((record["chosen"], base), (pick, new)):
            r, low, high = ratio_interval(scores, popular)
            cells += [f"{name} {scores.mean():.4f}", f"{r:.2f} [{low:.2f}, {high:.2f}]"]
        flag = " (weak)" if weak else ""
        print(f"| {path.stem}{flag} | {len(base)} | {'; '.join(protocols)} | {' | '.join(cells)} |")
    diff = np.concatenate(new_all) - np.concatenate(base_all)
    low, high = bootstrap_ci(diff, n_resamples=RESAMPLES, seed=0)
    print(
        f"\npooled over {len(args.records)} samples, {len(diff)} test users: this tree − base "
        f"{diff.mean():+.4f} [{low:+.4f}, {high:+.4f}]; samples moved: "
        f"{sum(not np.array_equal(a, b) for a, b in zip(base_all, new_all, strict=True))}"
    )


if __name__ == "__main__":
    main()
