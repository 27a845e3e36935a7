"""The accuracy bar of issue #15, per dataset and protocol, in one run: the default pipeline
against recsmith's ``popular``, its best single source and ``implicit``'s ALS.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/bar_check.py \
        --datasets ml-100k,ml-latest-small@0.3 --protocols temporal:0.8,leave-last-out \
        --part validation

The bar's two protocols are a global time cut (``temporal:0.8``, the sparse marketplace set) and
each user's last item ranked against the whole catalogue (``leave-last-out``, the long review
sequences). ``--part validation`` applies the protocol to the dataset's train part a second time
and scores on that inner cut, so choices can be made without ever reading a test part;
``--part test`` is the confirmation (the outer train / test split, as the scorer cuts it).
``NAME@SHARE`` keeps a seeded random ``SHARE`` of NAME's events (``ml-100k@0.1`` is the shape of
the sparse marketplace set).

Every model is trained on the same train part and scored on the same truth with the runner's
metric code (seen items excluded): the pipeline is ``default.toml`` (``examples/pipeline.toml``),
trained by ``train_pipeline`` as ``recsmith train`` trains it, and served by ``top_k``;
``implicit`` is ``AlternatingLeastSquares`` at recsmith's iALS defaults on the identical matrix.
Each row gives NDCG@10 with a 95 % bootstrap interval over users; the pipeline's row adds the
paired differences from ``popular`` and from the best single source with their intervals.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from calibrated_default import in_events_numbering, with_calibration
from calibration import calibration_line
from pipeline_vs_models import SINGLE, load_named
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.evaluation.metrics import compute_metrics
from recsmith.evaluation.runner import GroundTruth, evaluate_model, ground_truth, score_lists
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.evaluation.split import Split, parse_split
from recsmith.features.interactions import Interactions
from recsmith.models.als import ALSConfig
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.runtime import Pipeline

K = 10


@dataclass(frozen=True)
class Scored:
    name: str
    per_user: np.ndarray
    seconds: float

    @property
    def mean(self) -> float:
        return float(self.per_user.mean())


def parts(name: str, protocol: str, part: str) -> tuple[Split, list]:
    """The (train, test) parts of ``name`` under ``protocol``; for ``validation`` the protocol
    cut again inside the outer train part (the test part is dropped unread)."""
    events, items, _ = load_named(name)
    spec = parse_split(protocol)
    split = spec.apply(events)
    if part == "validation":
        split = spec.apply(split.train.reset_index(drop=True))
    return split, items


def implicit_als(data: Interactions, users: np.ndarray) -> np.ndarray:
    """``implicit``'s ALS lists at recsmith's iALS defaults (same matrix, same users)."""
    from implicit.cpu.als import AlternatingLeastSquares

    params = ALSConfig()
    model = AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
        random_state=params.random_state,
        num_threads=1,
    )
    matrix = sparse.csr_matrix(data.matrix)
    model.fit(matrix, show_progress=False)
    ids, _ = model.recommend(users, matrix[users], N=K, filter_already_liked_items=True)
    return np.asarray(ids, dtype=np.int64)


def run(name: str, protocol: str, part: str, fixed: bool) -> None:
    split, items = parts(name, protocol, part)
    weights = dict(EventSettings().weights)
    data = Interactions.from_events(split.train, weights)
    truth = ground_truth(data, split.test, weights)
    scored: list[Scored] = []
    for model in SINGLE:
        r = evaluate_model(model, data, truth, K)
        scored.append(Scored(model, r.per_user["ndcg"], r.fit_seconds))
    started = time.perf_counter()
    users = data.users.to_index(truth.user_ids).astype(np.int64)
    ids = implicit_als(data, users)
    ids[(ids < 0) | (ids >= data.n_items)] = -1
    result = compute_metrics(ids, truth.matrix, truth.matrix.shape[1], ("ndcg",), K)
    scored.append(Scored("implicit ALS", result.per_user["ndcg"], time.perf_counter() - started))
    summaries = []
    for label, calibrated in [("pipeline", True), *([("fixed pipeline", False)] * fixed)]:
        pipeline, score = pipeline_scored(label, with_calibration(calibrated), split, items, truth)
        scored.append(score)
        manifest = pipeline.manifest
        summaries.append(manifest.get("calibration_summary") or manifest["ranker_summary"])
    pipe = next(s for s in scored if s.name == "pipeline")
    popular = scored[0]
    best = max(scored[1 : len(SINGLE)], key=lambda s: s.mean)
    best = best if best.mean > popular.mean else popular
    print(f"\n#### {name}, `{protocol}`, {part} part ({len(truth.user_ids):,} users)")
    for summary in summaries:
        print(f"  {summary}")
    print("| model | NDCG@10 [95 % CI] | pipeline − model [95 % CI] | fit s |")
    print("|---|---:|---:|---:|")
    for s in scored:
        low, high = bootstrap_ci(s.per_user, seed=0)
        cell = f"{s.mean:.4f} [{low:.4f}, {high:.4f}]"
        diff = pipe.per_user - s.per_user
        d_low, d_high = bootstrap_ci(diff, seed=0)
        gap = "" if s is pipe else f"{diff.mean():+.4f} [{d_low:+.4f}, {d_high:+.4f}]"
        tag = " (best single)" if s is best else ""
        print(f"| {s.name}{tag} | {cell} | {gap} | {s.seconds:.1f} |")
    print(
        f"pipeline / implicit: {ratio(pipe, scored[len(SINGLE)])}; pipeline / popular: "
        f"{ratio(pipe, popular)}; pipeline / best single ({best.name}): {ratio(pipe, best)}",
        flush=True,
    )


def pipeline_scored(
    label: str, config: PipelineConfig, split: Split, items: list, truth: GroundTruth
) -> tuple[Pipeline, Scored]:
    """A pipeline trained by ``config`` on the split's training events and its per-user NDCG@10
    on ``truth`` (the test users' held-out items; its lists in ``data``'s item numbering), with
    its training seconds."""
    weights = dict(EventSettings().weights)
    data = Interactions.from_events(split.train, weights)
    started = time.perf_counter()
    pipeline = train_pipeline(config, split.train, weights, items=items)
    fitted = time.perf_counter() - started
    top, _, _ = pipeline.top_k(truth.user_ids, K)
    ids = in_events_numbering(pipeline, top.ids, data)
    r = score_lists(
        label, {}, ids, data, truth, K, ("ndcg",), curve_k=0, features=None,
        fit_seconds=fitted, recommend_seconds=0.0,
    )  # fmt: skip
    return pipeline, Scored(label, r.per_user["ndcg"], fitted)


def ratio(a: Scored, b: Scored) -> str:
    return f"{a.mean / b.mean:.2f}x" if b.mean > 0 else "n/a (0 below)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k")
    parser.add_argument("--protocols", default="temporal:0.8,leave-last-out")
    parser.add_argument("--part", choices=("validation", "test"), default="validation")
    parser.add_argument(
        "--fixed", action="store_true", help="also the pipeline with calibration off (as written)"
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    started = time.perf_counter()
    for name in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            run(name, protocol, args.part, args.fixed)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
