"""Does the LightGBM ranker win on leave-last-out review data with many queries (#15)?

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \
        benchmarks/ranker_at_size.py --seeds 0,1,2 --budget 3000

At the hidden long set's size (``shape_sweep.py``'s ``hidden-long``: 21k users, 12k items) the
ranker is "not tried: … would pass the 600 s CPU budget" (BENCHMARKS §154, §167). Whether making
it fit is worth anything depends on whether it wins where it does fit, so this asks that first
on the same simulator's reviews at a middle size (``--users`` / ``--items``, default 6,000 /
4,000, ``shape_sweep.reviews``: each user's first event on an item, users with >= 5), each
user's last item held out (``shape_sweep.split``) and scored by ``shape_sweep.ndcg_at_10``.

Per seed:

1. ``calibrate`` on the train part with the default pipeline file, its CPU budget raised to
   ``--budget`` so the ranker is tried wherever calibration reaches it; printed: what was
   chosen, the ranker's verdict, its validation NDCG@10 and paired difference against the base
   choice it re-orders (the calibration report's rows), and the CPU seconds ``_try_ranker``
   spent (this process's own CPU, ``time.process_time``);
2. the chosen configuration trained twice with calibration off, the ranker on and off
   (``train_pipeline``: the ranker's own held-out gate still decides whether it is kept), both
   scored on the test users: the test effect of the ranker over the base choice, whichever was
   shipped, as a paired 95 % bootstrap interval over users.

``--gates N,M``: only the ranker's own held-out check over EASE's order at ``min_queries`` N, M
(more label windows); ``--served-at M``: only that ranker's test effect (BENCHMARKS §175).

``--protocols latest,both``: only the test effect of the ranker trained with each
``ranking.label_protocol`` over EASE's order, served whatever its gate says (the gate's verdict
printed beside it); ``--sample DATASET:SHAPE`` runs that on ``shape_sweep``'s sample instead of
the simulated reviews. ``--ranker-latest``: calibration's run above with
``calibration.ranker_latest`` on (BENCHMARKS §181).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from calibration import calibration_line
from shape_sweep import SHAPES, K, Split, events_of, ndcg_at_10, reviews, sample, split

from recsmith.config import EventSettings
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.pipeline import calibration as cal
from recsmith.pipeline import training
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.calibration import alone, with_popularity
from recsmith.pipeline.config import PipelineConfig, default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.training import keeps, train_ranker
from recsmith.simulate import simulate


def review_events(seed: int, users: int, items: int) -> pd.DataFrame:
    """The simulator's reviews at a middle size (``shape_sweep.events_of``'s recipe for
    ``simulated-reviews`` with fewer users and items)."""
    events = simulate(
        seed=seed, n_users=users, n_items=items, sessions_per_user=3.0, events_per_session=5.0
    ).events
    ts = pd.to_datetime(events["timestamp"]).dt.as_unit("us").astype("int64")
    events = reviews(events.assign(ts=ts))
    return pd.DataFrame(
        {
            "user_id": events["user_id"].astype(str),
            "item_id": events["item_id"].astype(str),
            "event_type": events["event_type"].astype(str),
            "value": events["value"],
            "ts": events["ts"].astype(np.int64),
            "session_id": None,
        }
    ).reset_index(drop=True)


class TimedRanker:
    """``calibration._try_ranker`` as it is, with the CPU seconds it spent recorded, and each
    validation past's ``train_ranker`` report (its held-out gate: the ranker against the
    candidates' own order, which ``_try_ranker`` reduces to a word when it fails)."""

    def __init__(self) -> None:
        self.inner, self.train = cal._try_ranker, cal.train_ranker
        self.seconds = 0.0
        self.gates: list[dict[str, Any]] = []

    def __call__(self, *args: Any) -> Any:
        started = time.process_time()
        out = self.inner(*args)
        self.seconds = time.process_time() - started
        return out

    def trained(self, *args: Any) -> Any:
        ranker, said = self.train(*args)
        self.gates.append(said)
        return ranker, said


def rows_of(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    row = next((t for t in report["tried"] if t["name"] == name), None)
    return row["protocols"] if row else []


def served(config: PipelineConfig, train: pd.DataFrame, users: list[str], ranking: bool) -> Any:
    """Top-K lists of ``config`` trained with calibration off and the ranker on or off."""
    config = config.model_copy(
        update={
            "calibration": config.calibration.model_copy(update={"enabled": False}),
            "ranking": config.ranking.model_copy(update={"enabled": ranking}),
        }
    )
    events = train.assign(event_id=None, context=None)
    pipeline = train_pipeline(config, events, dict(EventSettings().weights))
    top, _, _ = pipeline.top_k(np.array(users, dtype=object), K)
    lists = {
        u: list(pipeline.bundle.items.to_external(row[row >= 0]))
        for u, row in zip(users, top.ids, strict=True)
    }
    return lists, pipeline.bundle.manifest.get("ranker_training", {})


def run(seed: int, users: int, items: int, budget: float, latest: bool = False) -> None:
    events = review_events(seed, users, items)
    s = split(events, "last")
    print(
        f"\n== seed {seed}: {len(events):,} ev, {events.user_id.nunique():,} u, "
        f"{events.item_id.nunique():,} i, {len(s.users):,} test u",
        flush=True,
    )
    config = default_pipeline_config()
    config = config.model_copy(
        update={
            "calibration": config.calibration.model_copy(
                update={"budget_seconds": budget, "ranker_latest": latest}
            ),
        }
    )
    full = Interactions.from_events(
        s.train.assign(event_id=None, context=None), dict(EventSettings().weights)
    )
    attrs = ItemAttributes.from_items([], full.items, config.ranking.max_property_features)
    timed = TimedRanker()
    cal._try_ranker, cal.train_ranker = timed, timed.trained
    started = time.process_time()
    try:
        chosen = cal.calibrate(config, full, attrs)
    finally:
        cal._try_ranker, cal.train_ranker = timed.inner, timed.train
    spent = time.process_time() - started
    report = chosen.report
    print(f"calibration CPU {spent:.0f} s (ranker {timed.seconds:.0f} s); chosen "
          f"{report['chosen']}; ranker: {report['ranker']} "
          f"(labels: {report.get('ranker_labels', 'time')})")  # fmt: skip
    print(f"reason: {report['reason']}")
    for gate in timed.gates:
        print("  ranker's held-out gate on a validation past: "
              + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in gate.items()))  # fmt: skip
    said = str(report["ranker"])
    base = said.split("over the ")[1].split(" candidates")[0] if "over the" in said else ""
    for name in dict.fromkeys(n for n in [report["chosen"], "ranker", base] if n):
        for p in rows_of(report, name):
            print(f"  val {name:<24} {p['protocol']:<12} ndcg {p['ndcg@10']:.5f} "
                  f"vs best single {p.get('vs_best_single')}")  # fmt: skip
    on, said_on = served(chosen.config, s.train, s.users, True)
    off, _ = served(chosen.config, s.train, s.users, False)
    a, b = ndcg_at_10(on, s), ndcg_at_10(off, s)
    low, high = bootstrap_ci(a - b, n_resamples=1000, seed=seed)
    print(f"test ranker on {a.mean():.5f} off {b.mean():.5f} diff {a.mean() - b.mean():+.5f} "
          f"[{low:+.5f}, {high:+.5f}] ({len(a):,} users); ranker trained: "
          f"{said_on}", flush=True)  # fmt: skip


def gates(seed: int, users: int, items: int, least: list[int]) -> None:
    """The ranker's own held-out check (``train_ranker``) on the train part over EASE's order at
    the file's defaults (every source's candidates, ``calibration.alone``), with its label
    windows grown until they hold each of ``least`` queries (``ranking.min_queries``; the
    default 200 stops at one window): does it win once it learns from many queries?"""
    events = review_events(seed, users, items)
    s = split(events, "last")
    config = with_popularity(alone(default_pipeline_config(), "ease"))
    full = Interactions.from_events(
        s.train.assign(event_id=None, context=None), dict(EventSettings().weights)
    )
    attrs = ItemAttributes.from_items([], full.items, config.ranking.max_property_features)
    for n in least:
        ranking = config.ranking.model_copy(update={"min_queries": n})
        started = time.process_time()
        _, said = train_ranker(config.model_copy(update={"ranking": ranking}), full, attrs)
        print(f"seed {seed} min_queries {n}: CPU {time.process_time() - started:.0f} s; "
              + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in said.items()), flush=True)  # fmt: skip


def served_at(seed: int, users: int, items: int, least: int) -> None:
    """The test effect of the ranker ``gates`` trains at ``min_queries`` ``least`` over EASE's
    order at the file's defaults: trained on the whole train part, ranker on against off, paired
    over the test users. Through ``protocols`` the ranker is served whatever its gate says (its
    verdict is printed; the shipped effect is 0 where it is not ``kept``), so the figures are not
    §175's gated ones, where a rejected ranker served the fused order (review rv30r)."""
    protocols(split(review_events(seed, users, items), "last"), seed, ["time"], least)


def protocols(s: Split, seed: int, labels: list[str], least: int = 200) -> None:
    """Per ``ranking.label_protocol`` in ``labels``: the ranker over EASE's order at the file's
    defaults (``calibration.alone`` + popularity, ``min_queries`` ``least``) trained on the
    whole train part, its gate's verdict and CPU seconds, and its test effect against the
    ranker off (the base choice it re-orders), paired over the test users. The ranker is served
    whatever its gate says (``training.keeps`` overridden here), so the effect is the learnt
    ranker's own; the shipped pipeline's effect is that where the gate says ``kept``, else 0.
    Then each protocol's ranker against the first's, paired the same way."""
    config = with_popularity(alone(default_pipeline_config(), "ease"))
    off, _ = served(config, s.train, s.users, False)
    b = ndcg_at_10(off, s)
    scores = {}
    for label in labels:
        ranking = config.ranking.model_copy(update={"min_queries": least, "label_protocol": label})
        started = time.process_time()
        training.keeps = lambda ranked, fused, rule: (True, *keeps(ranked, fused, rule)[1:])
        try:
            on, said = served(
                config.model_copy(update={"ranking": ranking}), s.train, s.users, True
            )
        finally:
            training.keeps = keeps
        spent = time.process_time() - started
        a = scores[label] = ndcg_at_10(on, s)
        low, high = bootstrap_ci(a - b, n_resamples=1000, seed=seed)
        fused, ranked = said.get("heldout_ndcg_retrieval"), said.get("heldout_ndcg_ranker")
        gate = "too few queries" if fused is None else f"{ranked:.4f} vs {fused:.4f}"
        kept = fused is not None and ranked > fused  # the default rule, "better"
        print(f"seed {seed} {label:<6}: ranker {a.mean():.5f} off {b.mean():.5f} diff "
              f"{a.mean() - b.mean():+.5f} [{low:+.5f}, {high:+.5f}] ({len(a):,} users); gate "
              f"{'kept' if kept else 'NOT kept'} {gate} [{said.get('heldout_gain_low', 0):+.4f}, "
              f"{said.get('heldout_gain_high', 0):+.4f}], {said.get('queries')} q, "
              f"{said.get('windows')} windows; train CPU {spent:.0f} s", flush=True)  # fmt: skip
    first = labels[0]
    for label in labels[1:]:
        d = scores[label] - scores[first]
        low, high = bootstrap_ci(d, n_resamples=1000, seed=seed)
        print(f"seed {seed} {label} - {first}: {d.mean():+.5f} [{low:+.5f}, {high:+.5f}]")


def sample_split(name: str, seed: int) -> Split:
    """``shape_sweep``'s sample ``DATASET:SHAPE`` at ``seed``, split by the shape's protocol."""
    dataset, shape = name.split(":")
    events = sample(events_of(dataset, seed), SHAPES[shape], seed)
    return split(events, SHAPES[shape].protocol)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--budget", type=float, default=600.0, help="calibration CPU budget")
    parser.add_argument(
        "--gates", default="", help="only the ranker's held-out check at these min_queries"
    )
    parser.add_argument(
        "--served-at", type=int, default=0, help="only the test effect at this min_queries"
    )
    parser.add_argument(
        "--protocols",
        default="",
        help="only the served ranker's test effect per ranking.label_protocol (time,latest,both)",
    )
    parser.add_argument(
        "--ranker-latest", action="store_true", help="calibration.ranker_latest = true"
    )
    parser.add_argument(
        "--sample", default="", help="with --protocols: shape_sweep's DATASET:SHAPE, not reviews"
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    for seed in map(int, args.seeds.split(",")):
        if args.protocols:
            s = sample_split(args.sample, seed) if args.sample else None
            s = s or split(review_events(seed, args.users, args.items), "last")
            print(f"== {args.sample or 'reviews'} seed {seed}: {len(s.train):,} train ev, "
                  f"{len(s.users):,} test u", flush=True)  # fmt: skip
            protocols(s, seed, args.protocols.split(","))
        elif args.served_at:
            served_at(seed, args.users, args.items, args.served_at)
        elif args.gates:
            gates(seed, args.users, args.items, [int(n) for n in args.gates.split(",")])
        else:
            run(seed, args.users, args.items, args.budget, args.ranker_latest)


if __name__ == "__main__":
    main()
