"""The ranker with and without real context and property features (#15), on validation only.

    .venv/bin/python benchmarks/context_features.py --datasets ml-100k,diginetica-sample

Each dataset's train part (its usual split, ``pipeline_vs_models.DATASETS``; the test part is
never read) is split again by the calibration machinery (``validation_splits``, the first:
a time cut where enough users return, else each user's latest item). On the validation past the
default pipeline's ranker is trained once per arm, as ``train_pipeline`` trains it (label
windows, the held-out keep-or-not check), and scored on the validation users over the fused
candidates with popularity beneath, as served:

* ``before``: ``ranking.context_features = false`` and ``max_property_features = 0``: what the
  ranker could learn from before #15 (its hour and device were constants);
* ``context``: hour, day of week and device of each query's moment;
* ``all``: context, item properties (price band, declared ones) and user profile properties
  (ml-100k's age, gender, occupation from ``u.user``).

A ranker the held-out check does not keep serves the fused order (so does the arm). Differences
are paired over the same validation users, with 95 % bootstrap intervals. ``--min-queries N``
lowers ``ranking.min_queries`` for this measurement only (where no ranker trains at the default,
no feature can matter); the default is the pipeline's.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from calibration import calibration_line
from pipeline_vs_models import DATASETS, ROOT, load

from recsmith.config import EventSettings
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.evaluation.split import parse_split
from recsmith.events.importers.base import read_source
from recsmith.events.validate import validate_users
from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import _Scorer, with_popularity
from recsmith.pipeline.config import PipelineConfig, default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.training import train_ranker
from recsmith.pipeline.validation import validation_splits
from recsmith.ranking.features import FeatureState, feature_names
from recsmith.ranking.ltr import importance_summary

ARMS = {
    "before": {"context_features": False, "max_property_features": 0},
    "context": {"context_features": True, "max_property_features": 0},
    "all": {"context_features": True, "max_property_features": 8},
}


def arm(config: PipelineConfig, name: str) -> PipelineConfig:
    ranking = config.ranking.model_copy(update=ARMS[name])
    return config.model_copy(update={"ranking": ranking})


def profiles(fmt: str, folder: str) -> dict[str, dict]:
    source = read_source(fmt, ROOT / folder)
    return {
        u.user_id: u.properties for chunk in source.users for u in validate_users(chunk.rows)[0]
    }


def run(name: str, min_queries: int | None) -> list[str]:
    fmt, folder, split = DATASETS[name]
    events, items = load(fmt, folder)
    train = parse_split(split).apply(events).train
    users = profiles(fmt, folder)
    full = Interactions.from_events(train, dict(EventSettings().weights), profiles=users)
    base = default_pipeline_config()
    if min_queries is not None:
        ranking = base.ranking.model_copy(update={"min_queries": min_queries})
        base = base.model_copy(update={"ranking": ranking})
    cc = base.calibration
    seed = base.ranking.random_state
    val = validation_splits(full, cc.min_users, cc.share, cc.max_users, seed)[0]
    attrs = ItemAttributes.from_items(items, val.past.items, ARMS["all"]["max_property_features"])
    scorer = _Scorer(with_popularity(base), val, attrs, full)
    fused = scorer.ndcg(scorer.candidates(base))
    per_user: dict[str, np.ndarray] = {}
    lines = [
        f"### {name}: {len(val.users):,} validation users ({val.protocol}), "
        f"{len(users):,} profiles, min_queries {base.ranking.min_queries}",
        "",
        "| arm | ranker | NDCG@10 [95 % CI] | vs before [95 % CI] | fit s |",
        "|---|---|---:|---:|---:|",
        f"| fused order (no ranker) | - | {_mean(fused)} | | |",
    ]
    notes = []
    before_names = set(
        feature_names(
            tuple(s.name for s in base.retrieval.sources),
            FeatureState.build(val.past, attrs.category, attrs.price, attrs.created_ts),
        )
    )  # no property columns
    before_names -= {"day_of_week", "hour", "device"}
    for label in ARMS:
        config = arm(base, label)
        started = time.perf_counter()
        ranker, report = train_ranker(config, val.past, attrs)
        seconds = time.perf_counter() - started
        scores = scorer.ranked(ranker, config) if ranker is not None else fused
        per_user[label] = scores
        diff = "" if label == "before" else _diff(scores - per_user["before"])
        outcome = str(report["outcome"])
        lines.append(f"| {label} | {outcome} | {_mean(scores)} | {diff} | {seconds:.0f} |")
        if ranker is not None:
            gain = ranker.importance()
            new = sum(g for n, g in gain.items() if n not in before_names) / sum(gain.values())
            share = f"; the new features' share of the gain: {100 * new:.0f}%"
            notes.append(f"{label}: {importance_summary(gain, top=8)}{share}")
    return [*lines, "", *(f"- {n}" for n in notes), ""]


def _mean(x: np.ndarray) -> str:
    low, high = bootstrap_ci(x, n_resamples=1000, seed=0)
    return f"{x.mean():.4f} [{low:.4f}, {high:.4f}]"


def _diff(d: np.ndarray) -> str:
    low, high = bootstrap_ci(d, n_resamples=1000, seed=0)
    return f"{d.mean():+.4f} [{low:+.4f}, {high:+.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small,diginetica-sample")
    parser.add_argument("--min-queries", type=int, default=None)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    print(
        f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}"
    )
    started = time.perf_counter()
    for name in args.datasets.split(","):
        print("\n".join(run(name, args.min_queries)), flush=True)
    print(f"Total {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
