"""The default pipeline's NDCG@10 under other iALS starts: how much of a score is the start's luck.

    cd benchmarks && OPENBLAS_NUM_THREADS=1 python ials_seed_spread.py --seeds 1,2,3 --part test

``bar_check``'s split and scoring (``pipeline_scored``) of ``default.toml`` with calibration, its
iALS source given ``params.random_state = N`` for each seed (the file pins none; 42 is iALS's
default, what ``bar_check`` itself runs). A seed is never to be chosen by these scores: the
spread says how far apart two equally valid starts land (BENCHMARKS §49). iALS averages
``starts`` fits from seeds N, N+1, … (§58): keep the listed seeds that far apart.
"""

from __future__ import annotations

import argparse

from bar_check import parts, pipeline_scored
from calibrated_default import with_calibration
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.evaluation.runner import GroundTruth, ground_truth
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.evaluation.split import Split
from recsmith.features.interactions import Interactions
from recsmith.pipeline.config import PipelineConfig


def seeded(config: PipelineConfig, seed: int) -> PipelineConfig:
    """``config`` with every iALS source started from ``seed``."""
    sources = [
        s.model_copy(update={"params": {**s.params, "random_state": seed}})
        if s.model == "ials"
        else s
        for s in config.retrieval.sources
    ]
    retrieval = config.retrieval.model_copy(update={"sources": sources})
    return config.model_copy(update={"retrieval": retrieval})


def seeds_parser(doc: str, seeds: str) -> argparse.ArgumentParser:
    """The options a run over iALS seeds on one split takes (this script's, ``ials_starts``')."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--protocol", default="temporal:0.8")
    parser.add_argument("--part", choices=("validation", "test"), default="validation")
    parser.add_argument("--seeds", default=seeds)
    return parser


def split_of(args: argparse.Namespace) -> tuple[Split, list, Interactions, GroundTruth]:
    """The calibration line printed, then ``args``' split, catalogue, train matrix and truth."""
    print(calibration_line(), flush=True)
    split, items = parts(args.dataset, args.protocol, args.part)
    data = Interactions.from_events(split.train, dict(EventSettings().weights))
    return split, items, data, ground_truth(data, split.test, EventSettings().weights)


def main() -> None:
    args = seeds_parser(__doc__, "1,2,3").parse_args()
    split, items, _, truth = split_of(args)
    for seed in map(int, args.seeds.split(",")):
        config = seeded(with_calibration(True), seed)
        pipeline, score = pipeline_scored("pipeline", config, split, items, truth)
        low, high = bootstrap_ci(score.per_user, seed=0)
        summary = pipeline.manifest.get("calibration_summary")
        print(f"ials seed {seed}: {score.mean:.4f} [{low:.4f}, {high:.4f}] | {summary}", flush=True)


if __name__ == "__main__":
    main()
