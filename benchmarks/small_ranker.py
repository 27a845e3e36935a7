"""A lighter ranker for small data (#15), on validation splits only.

    .venv/bin/python benchmarks/small_ranker.py --datasets ml-100k@0.1,ml-latest-small@0.3

Each dataset's train part (``pipeline_vs_models.DATASETS``' split; ``NAME@SHARE`` keeps a seeded
random share of the events first, a sparse shop's shape; the test part is never read) is split
again as calibration splits it (the first of ``validation_splits``). On the validation past
the default pipeline's ranker is trained as ``train_pipeline`` trains it (label windows, a fifth of
the users held out, kept only if it beats the fused order there) once per arm, and scored on the
validation users over the fused candidates with popularity beneath, as served; an arm whose
ranker is not trained or not kept serves the fused order.

* ``default``: the configured ranker (100 trees, 31 leaves) at ``min_queries`` 200;
* ``default@50``: the same ranker allowed from 50 labelled users;
* ``light@50``: 30 trees of 7 leaves, at least 50 rows a leaf, L2 10, from 50 users;
* ``…, beyond noise``: kept only if its held-out gain's 95 % paired interval lies above zero
  (``ranking.keep = "beyond_noise"``), not on any gain (``"better"``, the default).

Differences against the fused order are paired over the same validation users (95 % bootstrap).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from calibration import calibration_line
from context_features import _diff, _mean
from pipeline_vs_models import DATASETS, load

from recsmith.config import EventSettings
from recsmith.evaluation.split import parse_split
from recsmith.features.interactions import Interactions
from recsmith.pipeline.calibration import _Scorer, with_popularity
from recsmith.pipeline.config import PipelineConfig, default_pipeline_config
from recsmith.pipeline.item_attributes import ItemAttributes
from recsmith.pipeline.training import train_ranker
from recsmith.pipeline.validation import validation_splits

LIGHT = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 50, "reg_lambda": 10.0}
ARMS: dict[str, tuple[int, dict[str, float], str]] = {
    "default": (200, {}, "better"),
    "default, beyond noise": (200, {}, "beyond_noise"),
    "default@50": (50, {}, "better"),
    "light@50": (50, LIGHT, "better"),
    "light@50, beyond noise": (50, LIGHT, "beyond_noise"),
}


def arm(config: PipelineConfig, name: str) -> PipelineConfig:
    min_queries, params, keep = ARMS[name]
    rc = config.ranking
    ranking = rc.model_copy(
        update={
            "min_queries": min_queries,
            "params": rc.params.model_copy(update=params),
            "keep": keep,
        }
    )
    return config.model_copy(update={"ranking": ranking})


def run(name: str) -> list[str]:
    base_name, _, keep = name.partition("@")
    fmt, folder, split = DATASETS[base_name]
    events, items = load(fmt, folder)
    if keep:
        events = events.sample(frac=float(keep), random_state=0).sort_index()
    train = parse_split(split).apply(events).train
    full = Interactions.from_events(train, dict(EventSettings().weights))
    base = default_pipeline_config()
    cc = base.calibration
    seed = base.ranking.random_state
    val = validation_splits(full, cc.min_users, cc.share, cc.max_users, seed)[0]
    attrs = ItemAttributes.from_items(items, val.past.items, base.ranking.max_property_features)
    scorer = _Scorer(with_popularity(base), val, attrs, full)
    fused = scorer.ndcg(scorer.candidates(base))
    lines = [
        f"### {name}: {len(val.users):,} validation users ({val.protocol})",
        "",
        "| arm | ranker (held-out check) | NDCG@10 [95 % CI] | vs fused [95 % CI] | fit s |",
        "|---|---|---:|---:|---:|",
        f"| fused order | - | {_mean(fused)} | | |",
    ]
    for label in ARMS:
        config = arm(base, label)
        started = time.perf_counter()
        ranker, report = train_ranker(config, val.past, attrs)
        seconds = time.perf_counter() - started
        scores = scorer.ranked(ranker, config) if ranker is not None else fused
        outcome = str(report["outcome"])
        if "heldout_queries" in report:
            outcome += (
                f" ({report['heldout_ndcg_ranker']:.3f} vs {report['heldout_ndcg_retrieval']:.3f}"
                f" on {report['heldout_queries']:.0f}; gain [{report['heldout_gain_low']:+.3f}, "
                f"{report['heldout_gain_high']:+.3f}])"
            )
        elif "queries" in report:
            outcome += f" ({report['queries']:.0f} users)"
        lines.append(
            f"| {label} | {outcome} | {_mean(scores)} | {_diff(scores - fused)} | {seconds:.0f} |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", default="ml-100k@0.1,ml-latest-small@0.3,diginetica-sample,ml-100k"
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    started = time.perf_counter()
    for name in args.datasets.split(","):
        print("\n".join(run(name)), flush=True)
    print(f"numpy {np.__version__}; total {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
