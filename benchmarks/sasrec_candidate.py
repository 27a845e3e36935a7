"""SASRec as a candidate of calibration (issue #15, BENCHMARKS §47): SASRec alone under each loss
against EASE and ``popular``, and the default pipeline with and without the candidate.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sasrec_candidate.py \
        --datasets ml-100k,ml-latest-small --protocols leave-last-out --part validation

Splits as ``bar_check.py`` cuts them (``--part validation``: the protocol applied again inside the
train part; the test part is never read). Every row is scored on the same truth with the runner's
metric code (seen items excluded): NDCG@10 with a 95 % bootstrap interval over users, the paired
difference from the pipeline with the candidate, and the fit's wall seconds. ``pipeline`` is
``default.toml`` trained as ``recsmith train`` trains it with ``calibration.sequential = false``;
``pipeline+sasrec`` the same file as shipped (the candidate is tried where ``sequential.py`` says
it may pay); each prints calibration's one-line summary and its note on SASRec.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bar_check import K, Scored, parts, pipeline_scored, ratio
from calibrated_default import with_calibration
from calibration import calibration_line

from recsmith.config import EventSettings
from recsmith.evaluation.runner import evaluate_model, ground_truth
from recsmith.evaluation.significance import bootstrap_ci
from recsmith.features.interactions import Interactions
from recsmith.models.sasrec import sequence_lengths

MODELS = {
    "popular": ("popular", {}),
    "ease": ("ease", {}),
    "sasrec-bce": ("sasrec", {"loss": "bce", "num_threads": 1}),
    "sasrec-gbce": ("sasrec", {"loss": "gbce", "num_threads": 1}),
}
PIPELINES = ("pipeline", "pipeline+sasrec")


def run(name: str, protocol: str, part: str, rows: list[str], budget: float | None) -> None:
    split, items = parts(name, protocol, part)
    weights = dict(EventSettings().weights)
    data = Interactions.from_events(split.train, weights)
    truth = ground_truth(data, split.test, weights)
    scored: list[Scored] = []
    notes = []
    for row in rows:
        if row in MODELS:
            model, params = MODELS[row]
            r = evaluate_model(model, data, truth, K, params)
            scored.append(Scored(row, r.per_user["ndcg"], r.fit_seconds))
            continue
        config = with_calibration(True)
        cc = config.calibration.model_copy(update={"sequential": row == "pipeline+sasrec"})
        if budget is not None:
            cc = cc.model_copy(update={"budget_seconds": budget})
        config = config.model_copy(update={"calibration": cc})
        pipeline, score = pipeline_scored(row, config, split, items, truth)
        scored.append(score)
        report = pipeline.manifest.get("calibration", {})
        notes.append(f"{row}: {pipeline.manifest.get('calibration_summary')}")
        notes.append(f"{row}: sasrec {report.get('sasrec', '-')}")
    lengths = sequence_lengths(data)
    median = float(np.median(lengths[lengths > 0]))
    print(f"\n#### {name}, `{protocol}`, {part} part ({len(truth.user_ids):,} users, "
          f"median sequence {median:g} events)")  # fmt: skip
    for note in notes:
        print(f"  {note}")
    ref = next((s for s in scored if s.name == "pipeline+sasrec"), scored[-1])
    print(f"| model | NDCG@10 [95 % CI] | {ref.name} − model [95 % CI] | fit s |")
    print("|---|---:|---:|---:|")
    for s in scored:
        low, high = bootstrap_ci(s.per_user, seed=0)
        diff = ref.per_user - s.per_user
        d_low, d_high = bootstrap_ci(diff, seed=0)
        gap = "" if s is ref else f"{diff.mean():+.4f} [{d_low:+.4f}, {d_high:+.4f}]"
        print(f"| {s.name} | {s.mean:.4f} [{low:.4f}, {high:.4f}] | {gap} | {s.seconds:.1f} |")
    by = {s.name: s for s in scored}
    if "ease" in by:
        print("; ".join(f"{s.name} / ease {ratio(s, by['ease'])}" for s in scored), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,ml-latest-small")
    parser.add_argument("--protocols", default="leave-last-out")
    parser.add_argument("--part", choices=("validation", "test"), default="validation")
    parser.add_argument(
        "--rows",
        default=",".join([*MODELS, *PIPELINES]),
        help=f"which rows, in order: {', '.join([*MODELS, *PIPELINES])}",
    )
    parser.add_argument(
        "--budget", type=float, help="calibration.budget_seconds of both pipelines (file: 600)"
    )
    args = parser.parse_args()
    rows = args.rows.split(",")
    unknown = sorted(set(rows) - {*MODELS, *PIPELINES})
    if unknown:
        parser.error(f"--rows: unknown {', '.join(unknown)}")
    print(calibration_line(), flush=True)
    started = time.perf_counter()
    for name in args.datasets.split(","):
        for protocol in args.protocols.split(","):
            run(name, protocol, args.part, rows, args.budget)
    print(f"\nTotal {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
