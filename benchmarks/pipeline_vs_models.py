"""The default pipeline against its own retrieval models, on the real datasets, and the NDCG vs
intra-list-diversity curve as the MMR trade-off grows.

    .venv/bin/python benchmarks/pipeline_vs_models.py --out benchmarks/results/pipeline.md

Same split, truth and metric code as `recsmith evaluate` (``evaluation.runner``); the pipeline is
trained on the train part only and scored exactly as it serves (``Pipeline.top_k``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import pandas as pd
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.evaluation.runner import evaluate_models
from recsmith.evaluation.significance import paired_test
from recsmith.evaluation.split import parse_split
from recsmith.events.importers.base import read_source
from recsmith.events.validate import validate_events, validate_items
from recsmith.pipeline.config import default_pipeline_config

ROOT = Path(
    os.environ.get("RECSMITH_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)
DATASETS = {
    "ml-100k": ("movielens", "movielens-100k", "temporal:0.8"),
    "ml-latest-small": ("movielens", "movielens-latest-small", "temporal:0.8"),
    "lastfm": ("lastfm-hetrec", "lastfm-hetrec2011", "random:0.2"),
    "diginetica-sample": ("diginetica", "diginetica-sample", "leave-last-out"),
}
SINGLE = ["popular", "itemknn", "ials", "ease"]


def load(fmt: str, folder: str) -> tuple[pd.DataFrame, list]:
    source = read_source(fmt, ROOT / folder)
    items = [it for chunk in source.items for it in validate_items(chunk.rows)[0]]
    frames = [validate_events(c.rows, EventSettings(), offset=c.offset)[0] for c in source.events]
    return pd.concat(frames, ignore_index=True), items


def load_named(name: str) -> tuple[pd.DataFrame, list, str]:
    """Events, items and default split of ``NAME``, or of a seeded random ``SHARE`` of its events
    for ``NAME@SHARE`` (a sparse shop: ``ml-100k@0.1`` is 10k ratings, the shape of #15's
    marketplace set)."""
    base, _, keep = name.partition("@")
    fmt, folder, split = DATASETS[base]
    events, items = load(fmt, folder)
    if keep:
        events = events.sample(frac=float(keep), random_state=0).sort_index()
    return events, items, split


def run(name: str, k: int) -> list[str]:
    fmt, folder, split = DATASETS[name]
    events, items = load(fmt, folder)
    spec = parse_split(split)
    weights = dict(EventSettings().weights)
    started = time.perf_counter()
    results, stats = evaluate_models(
        events, spec, SINGLE, k, weights, items=items, pipeline=default_pipeline_config()
    )
    lines = [
        f"### {name} (`{split}`, {stats['evaluated_users']:,} users evaluated, "
        f"{stats['train_events']:,} train events)",
        "",
        "| model | ndcg@10 | recall@10 | precision@10 | coverage@10 | diversity | novelty | "
        "fit s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.model} | {r.metrics['ndcg']:.4f} | {r.metrics['recall']:.4f} | "
            f"{r.metrics['precision']:.4f} | {r.coverage:.4f} | {r.beyond['diversity']:.3f} | "
            f"{r.beyond['novelty']:.2f} | {r.fit_seconds:.1f} |"
        )
    best = max((r for r in results if r.model != "pipeline"), key=lambda r: r.metrics["ndcg"])
    pipe = next(r for r in results if r.model == "pipeline")
    gain = pipe.metrics["ndcg"] / best.metrics["ndcg"] - 1
    test = paired_test(pipe.per_user["ndcg"], best.per_user["ndcg"])
    lines += [
        "",
        f"Pipeline vs best single model ({best.model}): {gain:+.1%} ndcg@10 "
        f"(paired t-test over users: p = {test.p_value:.2g}).",
        "",
    ]
    print("\n".join(lines), flush=True)
    print(f"  ({time.perf_counter() - started:.0f}s)", flush=True)
    return lines


def diversity_curve(name: str, k: int) -> list[str]:
    fmt, folder, split = DATASETS[name]
    events, items = load(fmt, folder)
    spec = parse_split(split)
    base = default_pipeline_config()
    lines = [
        f"### NDCG vs intra-list diversity, {name} (`{split}`)",
        "",
        "| MMR diversity | ndcg@10 | intra-list diversity | coverage@10 |",
        "|---:|---:|---:|---:|",
    ]
    for lam in (0.0, 0.2, 0.4, 0.6, 0.8):
        config = base.model_copy(
            update={
                "rerank": base.rerank.model_copy(update={"diversity": lam, "similarity": "content"})
            }
        )
        results, _ = evaluate_models(
            events, spec, [], k, dict(EventSettings().weights), items=items, pipeline=config
        )
        r = results[0]
        lines.append(
            f"| {lam:.1f} | {r.metrics['ndcg']:.4f} | {r.beyond['diversity']:.3f} | "
            f"{r.coverage:.4f} |"
        )
        print(lines[-1], flush=True)
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--curve", default="ml-100k", help="dataset for the diversity curve")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    started = time.perf_counter()
    md = [
        "# Pipeline vs single models",
        "",
        f"`.venv/bin/python benchmarks/pipeline_vs_models.py --datasets {args.datasets}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}.",
        "",
    ]
    for name in args.datasets.split(","):
        md += run(name, args.k)
    if args.curve:
        md += diversity_curve(args.curve, args.k)
    md.append(f"Total {time.perf_counter() - started:.0f} s.")
    if args.out:
        args.out.write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
