"""Every configuration calibration tried, scored on test: an oracle table to replay choice rules
offline (BENCHMARKS §83).

``record``: for each sample (shape_sweep's sample and split, as ``choice_ab.py``), the default
trained with calibration on, with every ``robust_choice.deciding`` and ``prefer`` call of that
training kept (their per-user validation scores and references), then each configuration of the
final round — every single source alone and the fused order after its grid — trained again with
calibration and the ranker off and scored on test by shape_sweep's scorer. The shipped choice's
retrained copy gives the shipped per-user scores exactly (checked). Pickled to
``OUT/SHAPE-DATASET-SEED.pkl``.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/choice_oracle.py \\
        record --samples long/ml-100k/3,dense/ml-100k/1 --out /tmp/oracle

``replay``: the final choice (best single source, then ``prefer`` against the fused order)
under the rule before §94, the rule since (``ahead of popularity``) and the candidate rules
below, read from the recorded validation scores, and each one's test NDCG@10 from the oracle
table. Exact where a rule changes only that final choice (not the grids before it, which also
call ``prefer``).

    … choice_oracle.py replay /tmp/oracle/*.pkl
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from calibration import calibration_line
from shape_sweep import SHAPES, K, events_of, ndcg_at_10, sample, split

import recsmith.pipeline.calibration as calibration
from recsmith.config import EventSettings
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig, default_pipeline_config
from recsmith.pipeline.robust_choice import (
    RESAMPLES,
    Refs,
    Tried,
    _below_popularity,
    best_single,
    prefer,
    worst_share,
)

CALLS: list[tuple[Any, ...]] = []


def _recorded_prefer(
    simple: Tried, reason: str, rich: Tried, refs: Refs, seed: int, *rest: Any
) -> Any:
    out = prefer(simple, reason, rich, refs, seed, *rest)
    CALLS.append(("prefer", simple, rich, refs, seed, out[0].name, out[1]))
    return out


def _recorded_deciding(singles: Sequence[Tried], seed: int, *rest: Any) -> Any:
    out = _DECIDING(singles, seed, *rest)
    CALLS.append(("deciding", list(singles), out, seed))
    return out


_DECIDING = calibration.deciding


def test_scores(config: PipelineConfig, s: Any, events: Any) -> tuple[np.ndarray, Any]:
    """Per-user test NDCG@10 of ``config`` trained on ``events`` (shape_sweep's scorer), and the
    trained pipeline."""
    pipeline = train_pipeline(config, events, dict(EventSettings().weights))
    top, _, _ = pipeline.top_k(np.array(s.users, dtype=object), K)
    lists = {
        u: list(pipeline.bundle.items.to_external(row[row >= 0]))
        for u, row in zip(s.users, top.ids, strict=True)
    }
    return ndcg_at_10(lists, s), pipeline


def record(samples: str, out: Path) -> None:
    calibration.prefer, calibration.deciding = _recorded_prefer, _recorded_deciding
    out.mkdir(parents=True, exist_ok=True)
    print(calibration_line(), flush=True)
    config = default_pipeline_config()
    for spec in samples.split(","):
        shape, dataset, seed = spec.split("/")
        started = time.time()
        drawn = sample(events_of(dataset, int(seed)), SHAPES[shape], int(seed))
        s = split(drawn, SHAPES[shape].protocol)
        events = s.train.assign(event_id=None, context=None)
        CALLS.clear()
        shipped, pipeline = test_scores(config, s, events)
        cal = pipeline.bundle.manifest["calibration"]
        calls = list(CALLS)
        options = {t.name: t for t in [c for c in calls if c[0] == "deciding"][-1][1]}
        for c in calls:  # the fused order as it competed last (after its grid)
            for t in (c[1], c[2]) if c[0] == "prefer" else ():
                if t.name.startswith("fused"):
                    options[t.name] = t
        test = {}
        for name, t in options.items():
            off = t.config.model_copy(
                update={
                    "calibration": t.config.calibration.model_copy(update={"enabled": False}),
                    "ranking": t.config.ranking.model_copy(update={"enabled": False}),
                }
            )
            test[name] = test_scores(off, s, events)[0]
        if cal["chosen"] in test:
            assert np.array_equal(test[cal["chosen"]], shipped), "the oracle must reproduce it"
        else:  # a choice past the final round (the ranker, SASRec): its shipped scores
            test[cal["chosen"]] = shipped
        with open(out / f"{shape}-{dataset}-{seed}.pkl", "wb") as f:
            pickle.dump(
                {
                    "calls": calls,
                    "shipped": shipped,
                    "chosen": cal["chosen"],
                    "reason": cal["reason"],
                    "test": test,
                    "protocols": cal["protocols"],
                },
                f,
            )
        scores = ", ".join(f"{n} {v.mean():.4f}" for n, v in test.items())
        print(
            f"{spec}: {len(s.users)} test users, shipped {cal['chosen']} {shipped.mean():.4f}; "
            f"{scores}  [{time.time() - started:.0f} s] {cal['reason']}",
            flush=True,
        )


Rule = Callable[[list[Tried], Refs, Tried, int], str]


def _final(singles: list[Tried], refs: Refs, fused: Tried, seed: int) -> tuple[Tried, Tried]:
    best = max(singles, key=lambda t: worst_share(t, refs))
    return best, prefer(best, "best single source", fused, refs, seed)[0]


def maximin_before_94(singles: list[Tried], refs: Refs, fused: Tried, seed: int) -> str:
    """The rule before BENCHMARKS §94: the highest worst share of all single sources is the
    base the fused order must beat."""
    return _final(singles, refs, fused, seed)[1].name


def pooled(singles: list[Tried], refs: Refs, fused: Tried, seed: int) -> str:
    """The rule before §94, and also: the fused order replaces where its mean share gain over the
    counting protocols is beyond noise (protocols resampled as if their users were distinct: the
    offline approximation), worse beyond noise on none, its worst share not lower."""
    best, got = _final(singles, refs, fused, seed)
    if got is fused:
        return fused.name
    counting = [n for n, r in enumerate(refs.means) if r > 0]
    gain = np.concatenate(
        [
            (fused.per_user[n] - best.per_user[n]) / refs.means[n] / len(best.per_user[n])
            for n in counting
        ]
    ) * (sum(len(best.per_user[n]) for n in counting) / len(counting))
    low = bootstrap_ci(gain, n_resamples=RESAMPLES, seed=seed)[0]
    worse = any(
        bootstrap_ci(a - b, n_resamples=RESAMPLES, seed=seed)[1] < 0
        for a, b in zip(fused.per_user, best.per_user, strict=True)
    )
    steady = _below_popularity(fused, refs) <= _below_popularity(best, refs)
    if low > 0 and not worse and steady and worst_share(fused, refs) >= worst_share(best, refs):
        return fused.name
    return best.name


#: Each protocol's name in the sample being replayed (``replay`` sets it).
PROTOCOLS: list[str] = []


def veto(margin: float, time_only: bool = False) -> Rule:
    """A configuration whose mean on a protocol that does not decide (``time_only``: a time cut
    that does not decide) falls below popularity's there by more than ``margin`` (point estimate,
    no interval) cannot be chosen."""

    def rule(singles: list[Tried], refs: Refs, fused: Tried, seed: int) -> str:
        def vetoed(t: Tried) -> bool:
            return any(
                floor is not None
                and t.means[n] < (1 - margin) * floor.mean()
                and (PROTOCOLS[n].startswith("temporal") or not time_only)
                for n, floor in enumerate(refs.floors)
            )

        kept = [t for t in singles if not vetoed(t)] or singles[:1]
        best = max(kept, key=lambda t: worst_share(t, refs))
        if vetoed(fused):
            return best.name
        return prefer(best, "best single source", fused, refs, seed)[0].name

    return rule


def symmetric(singles: list[Tried], refs: Refs, fused: Tried, seed: int) -> str:
    """No bar for the fused order: the highest worst share of all, as among single sources."""
    return max([*singles, fused], key=lambda t: worst_share(t, refs)).name


def ahead_of_popularity(singles: list[Tried], refs: Refs, fused: Tried, seed: int) -> str:
    """The rule since BENCHMARKS §94 (``robust_choice.best_single``): where some protocol
    decides, only popularity and the sources ahead of it — beating it beyond noise as a richer
    choice must, or above its mean on every protocol (a tie is not above) — compete for the
    base the fused order must beat."""
    best = best_single(singles, refs, seed)
    return prefer(best, "best single source", fused, refs, seed)[0].name


RULES: dict[str, Rule] = {
    "maximin before §94": maximin_before_94,
    "ahead of popularity": ahead_of_popularity,
    "pooled": pooled,
    "veto 0": veto(0.0),
    "veto 0.1": veto(0.1),
    "veto 0.2": veto(0.2),
    "veto 0.25": veto(0.25),
    "time veto 0": veto(0.0, time_only=True),
    "time veto 0.25": veto(0.25, time_only=True),
    "symmetric": symmetric,
}


def final_round(calls: Sequence[tuple[Any, ...]]) -> tuple[list[Tried], Refs, Any, int, Tried]:
    """A record's last ``deciding`` call — the single sources, their references, each
    protocol's verdict, the seed — and the fused order as it first met a single source there."""
    singles, (refs, said), seed = [c for c in calls if c[0] == "deciding"][-1][1:]
    fused = [
        c[2]
        for c in calls
        if c[0] == "prefer" and c[2].name == "fused" and not c[1].name.startswith("fused")
    ][-1]
    return singles, refs, said, seed, fused


def replay(paths: Sequence[str]) -> None:
    for path in paths:
        with open(path, "rb") as f:
            d = pickle.load(f)
        singles, refs, _, seed, fused = final_round(d["calls"])
        PROTOCOLS[:] = [p["protocol"] for p in d["protocols"]]
        picks = {name: rule(singles, refs, fused, seed) for name, rule in RULES.items()}
        # a record is made by whichever rule its tree had: one of the two must reproduce it
        made_by = (picks["maximin before §94"], picks["ahead of popularity"])
        assert d["chosen"] in made_by, (path, made_by, d["chosen"])
        said = " | ".join(f"{r}: {p} {d['test'][p].mean():.4f}" for r, p in picks.items())
        print(f"{Path(path).stem}: {said}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--samples", required=True, help="SHAPE/DATASET/SEED,…")
    rec.add_argument("--out", type=Path, required=True)
    rep = sub.add_parser("replay")
    rep.add_argument("paths", nargs="+")
    args = parser.parse_args()
    if args.command == "record":
        record(args.samples, args.out)
    else:
        replay(args.paths)


if __name__ == "__main__":
    sys.exit(main())
