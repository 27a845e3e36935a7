"""Does a co-occurrence source earn a place in the default pipeline? (issue #12)

    .venv/bin/python benchmarks/cooccurrence_default.py --datasets ml-latest-small,diginetica-sample

Measured on VALIDATION splits only (``evaluation.split.validation_split``: carved out of each
data set's train part by the same rule as its benchmark split, so the test part is never looked
at): the default pipeline as shipped, and the same with one more retrieval source,
``[[retrieval.sources]] name = "together" model = "cooccurrence" quota = 50``, trained on the
validation train part and scored exactly as it serves (``evaluation.runner``). p = paired t-test
over the evaluated users (the same users for both runs).
"""

from __future__ import annotations

import argparse
import time

from calibration import calibration_line
from pipeline_vs_models import DATASETS, load

from recsmith.config import EventSettings
from recsmith.evaluation.runner import evaluate_models
from recsmith.evaluation.significance import paired_test
from recsmith.evaluation.split import parse_split, validation_split
from recsmith.pipeline.config import PipelineConfig, SourceConfig, default_pipeline_config

#: The source under test, as a user would add it to the TOML.
TOGETHER = {"name": "together", "model": "cooccurrence", "quota": 50}


def with_together(base: PipelineConfig, weight: float) -> PipelineConfig:
    """``base`` with the co-occurrence source (``weight`` in the fused order) appended to its
    retrieval sources."""
    sources = [*base.retrieval.sources, SourceConfig.model_validate({**TOGETHER, "weight": weight})]
    return base.model_copy(
        update={"retrieval": base.retrieval.model_copy(update={"sources": sources})}
    )


def run(name: str, k: int, weight: float) -> str:
    fmt, folder, split = DATASETS[name]
    events, items = load(fmt, folder)
    spec = parse_split(split)
    vsplit = validation_split(spec.apply(events).train, spec)
    weights = dict(EventSettings().weights)
    base = default_pipeline_config()
    out = {}
    for label, config in (("default", base), ("default + together", with_together(base, weight))):
        started = time.perf_counter()
        results, stats = evaluate_models(
            vsplit.train, vsplit, [], k, weights, items=items, pipeline=config
        )
        out[label] = (results[0], time.perf_counter() - started, stats["evaluated_users"])
    (a, ta, users), (b, tb, _) = out["default"], out["default + together"]
    test = paired_test(b.per_user["ndcg"], a.per_user["ndcg"])
    recall = paired_test(b.per_user["recall"], a.per_user["recall"])
    return (
        f"| {name} (validation of `{split}`) | {users:,} | {a.metrics['ndcg']:.4f} | "
        f"{b.metrics['ndcg']:.4f} | {b.metrics['ndcg'] / a.metrics['ndcg'] - 1:+.1%} | "
        f"{test.p_value:.2g} | {a.metrics['recall']:.4f} | {b.metrics['recall']:.4f} | "
        f"{recall.p_value:.2g} | {ta:.0f} / {tb:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-latest-small,diginetica-sample")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--weight", type=float, default=1.0, help="the source's fused weight")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    print(
        "| dataset | users | ndcg@10 default | + together | change | p | recall@10 default | "
        "+ together | p | s (fit+eval) |",
        flush=True,
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    for name in args.datasets.split(","):
        print(run(name, args.k, args.weight), flush=True)


if __name__ == "__main__":
    main()
