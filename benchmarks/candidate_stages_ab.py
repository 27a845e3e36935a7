"""The candidate stages of one coalesced ``Pipeline.answer`` batch (``merge``,
``candidate_features``, ``Candidates.rescored``, ``append_below``) of two checkouts on the very
same inputs, call by call.

``answer_ab.py`` times whole calls, where these stages are a third of the CPU and the machine's
noise (±3 % between runs under load) hides a change to one of them. Here one batch of known users
is answered once by this checkout with each stage's arguments kept, then both checkouts' stage
functions (the other one copied as ``recsmith_base``, as ``answer_ab.py`` does) run on those
arguments alternately, the order flipped every round. Each stage's outputs must be identical
(every column, NaN where NaN); the figure is the thread CPU time of a call (10th percentile and
median, µs), which a preempted call on a loaded machine does not inflate as wall time would.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/candidate_stages_ab.py /tmp/large/model \\
        --against /tmp/main/src --batch 64 --rounds 200
    (an offline batch past ``DENSE_CELLS``: --batch 8438 --rounds 15 --stages candidate_features)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line

STAGES = ("merge", "candidate_features", "rescored", "append_below")


def captured(model_dir: Path, batch: int, seed: int) -> dict[str, tuple[Any, Any]]:
    """Each stage's arguments (positional, keyword) in one ``answer`` of ``batch`` known users."""
    import recsmith.pipeline.runtime as runtime
    import recsmith.pipeline.training as training
    from recsmith.pipeline.artifact import load_artifact
    from recsmith.retrieval.candidates import Candidates

    pipe = load_artifact(model_dir)
    got: dict[str, tuple[Any, Any]] = {}

    def keep(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def kept(*args: Any, **kwargs: Any) -> Any:
            got.setdefault(name, (args, kwargs))
            return function(*args, **kwargs)

        return kept

    saved = (training.merge, runtime.candidate_features, runtime.append_below, Candidates.rescored)
    training.merge = keep("merge", training.merge)
    runtime.candidate_features = keep("candidate_features", runtime.candidate_features)
    runtime.append_below = keep("append_below", runtime.append_below)
    Candidates.rescored = keep("rescored", Candidates.rescored)  # type: ignore[method-assign]
    try:
        known = np.asarray(pipe.bundle.users.external_ids, dtype=object)
        pipe.answer(np.random.default_rng(seed).choice(known, size=batch), 10)
    finally:
        training.merge, runtime.candidate_features, runtime.append_below = saved[:3]
        Candidates.rescored = saved[3]  # type: ignore[method-assign]
    return got


def as_package(cands: Any, package: Any) -> Any:
    """The same rows as the other package's ``Candidates`` (the fields it has: an older
    checkout's lack a later one, such as ``distinct``)."""
    return package.Candidates(*(getattr(cands, f) for f in package.Candidates.__dataclass_fields__))


def columns(result: Any) -> list[np.ndarray]:
    if isinstance(result, np.ndarray):
        return [result]
    fields = ("query", "items", "score", "source_scores", "source_ranks")
    return [getattr(result, f) for f in fields] + [np.asarray(result.sources)]


def identical(a: Any, b: Any) -> bool:
    return all(
        x.dtype == y.dtype
        and x.shape == y.shape
        and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
        for x, y in zip(columns(a), columns(b), strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=list(STAGES),
        help="time only these (an offline-sized --batch: candidate_features alone)",
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        import recsmith_base.ranking.features as base_features  # type: ignore
        import recsmith_base.retrieval.candidates as base_candidates  # type: ignore
        import recsmith_base.retrieval.merge as base_merge  # type: ignore

        import recsmith.ranking.features as this_features
        import recsmith.retrieval.candidates as this_candidates
        import recsmith.retrieval.merge as this_merge

        got = captured(args.model_dir, args.batch, args.seed)
        merged, m_kw = got["merge"]
        feat, cands, score = got["candidate_features"][0], *got["rescored"][0]
        state, queries, rows = feat
        below, extra, name = got["append_below"][0]
        calls: dict[str, dict[str, Callable[[], Any]]] = {
            "this": {
                "merge": lambda: this_merge.merge(*merged, **m_kw),
                "candidate_features": lambda: this_features.candidate_features(*feat),
                "rescored": lambda: this_candidates.Candidates.rescored(cands, score),
                "append_below": lambda: this_merge.append_below(below, extra, name),
            },
            "against": {
                "merge": lambda: base_merge.merge(*merged, **m_kw),
                "candidate_features": lambda: base_features.candidate_features(
                    state, queries, as_package(rows, base_candidates)
                ),
                "rescored": lambda: as_package(cands, base_candidates).rescored(score),
                "append_below": lambda: base_merge.append_below(
                    as_package(below, base_candidates), extra, name
                ),
            },
        }
        stages = [s for s in STAGES if s in args.stages]
        same = {s: identical(calls["this"][s](), calls["against"][s]()) for s in stages}
        cpu: dict[str, dict[str, list[float]]] = {n: {s: [] for s in stages} for n in calls}
        for i in range(args.rounds):
            for stage in stages:
                for side in list(calls)[:: 1 if i % 2 == 0 else -1]:
                    started = time.thread_time()
                    calls[side][stage]()
                    cpu[side][stage].append(time.thread_time() - started)
    sizes = {
        "proposals": sum(len(p.items) for p in merged[0]),
        "candidates": len(cands),
        "filler": len(extra.items),
    }
    print(json.dumps({"batch": args.batch, "rounds": args.rounds, **sizes}))
    for stage in stages:
        figures = {
            side: [round(float(np.percentile(cpu[side][stage], p)) * 1e6) for p in (10, 50)]
            for side in calls
        }
        ratio = figures["this"][0] / figures["against"][0]
        print(
            json.dumps(
                {
                    "stage": stage,
                    "identical": same[stage],
                    "against_us_p10_p50": figures["against"],
                    "this_us_p10_p50": figures["this"],
                    "ratio_p10": round(ratio, 3),
                }
            )
        )


if __name__ == "__main__":
    main()
