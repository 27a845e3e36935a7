"""Where one checkout's ``Pipeline.answer`` spends its thread CPU, part by part, at a small
batch: the request sizes an open loop produces (1-4 users), where fixed per-call costs decide.

Each part's function is wrapped to add up its thread CPU within a call, less the parts timed
inside it (each microsecond counted once): the sources (``src:model`` the item-to-item sources,
``src:ann`` the factor model's index, ``src:static`` trending, new arrivals and the popularity
filler in their one pass), ``merge``, ``append_below`` (the filler joining the lists),
``queries``, ``features``, ``score`` (the ranker), ``rescored``, ``rerank`` (``finalise``),
``anchors``, ``names`` (``Candidates.source_names``), ``to_external`` (the ids); ``rest`` is what
``answer`` spends outside them (the glue, the ``Answer``'s lists). Known users drawn at random
(seed 0), each with ``--recent`` catalogue items as ``recent``, warm calls after 20 warm-up ones,
loaded objects frozen out of the collector as the server does; medians and 10th percentiles, µs
a call. ``answer_ab.py`` compares two checkouts' whole calls; ``retrieval_parts_ab.py``,
``query_rank_ab.py`` and ``rerank_ab.py`` compare their parts.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/answer_parts.py /tmp/large/model \\
        --batch 1 --calls 300
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line
from retrieval_parts_ab import WHOLE, Clock


def instrumented(clock: Clock, model_dir: Path) -> Any:
    """The pipeline of ``model_dir`` with its parts timed (``Clock``: one checkout, so its
    ``side`` stays fixed and each wrapped function is one part whatever its arguments)."""
    module = importlib.import_module
    runtime = module("recsmith.pipeline.runtime")
    training = module("recsmith.pipeline.training")
    candidates = module("recsmith.retrieval.candidates").Candidates
    for owner, attr, part in (
        (runtime.Pipeline, "answer", WHOLE),
        (runtime.Pipeline, "queries", "queries"),
        (module("recsmith.retrieval.sources").ModelSource, "retrieve", "src:model"),
        (module("recsmith.retrieval.ann").ANNSource, "retrieve", "src:ann"),
        (training, "static_proposals", "src:static"),
        (runtime, "merge", "merge"),
        (runtime, "append_below", "append_below"),
        (runtime, "candidate_features", "features"),
        (candidates, "rescored", "rescored"),
        (runtime.Pipeline, "finalise", "rerank"),
        (runtime, "anchor_items", "anchors"),
        (candidates, "source_names", "names"),
    ):
        clock.wrap(owner, attr, _named(part))
    pipe = module("recsmith.pipeline.artifact").load_artifact(model_dir)
    if pipe.ranker is not None:  # calibration may ship no ranker (the quickstart shop)
        clock.wrap(type(pipe.ranker), "score", _named("score"))
    clock.wrap(type(pipe.bundle.items), "to_external", _named("to_external"))
    getattr(pipe.ranker, "wait_compiled", lambda: None)()
    return pipe


def _named(part: str) -> Callable[[tuple[Any, ...]], str]:
    """``Clock.wrap``'s label for a function that is one part whatever it is called with."""
    return lambda _args: part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--batch", type=int, default=1, help="users per call")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--recent", type=int, default=3, help="recent items a user")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    clock = Clock()
    spent = clock.spent[clock.side]  # one checkout: the side never changes
    pipe = instrumented(clock, args.model_dir)
    gc.collect()
    gc.freeze()
    rng = np.random.default_rng(0)
    known = np.asarray(pipe.bundle.users.external_ids, dtype=object)
    items = np.asarray(pipe.bundle.items.external_ids, dtype=object)
    users = rng.choice(known, size=(args.calls, args.batch))
    recent = [
        [rng.choice(items, args.recent).tolist() for _ in range(args.batch)]
        for _ in range(args.calls)
    ]
    for i in range(min(20, args.calls)):  # warm-up
        pipe.answer(users[i], 10, recent=recent[i])
    per_call: dict[str, list[float]] = defaultdict(list)
    for row, asked in zip(users, recent, strict=True):
        spent.clear()
        pipe.answer(row, 10, recent=asked)
        call = dict(spent)
        call["rest"] = call[WHOLE] - sum(s for p, s in call.items() if p != WHOLE)
        for part, seconds in call.items():
            per_call[part].append(seconds)
    for part in sorted(per_call, key=lambda p: -statistics.median(per_call[p])):
        p50, p10 = (float(np.percentile(per_call[part], q)) * 1e6 for q in (50, 10))
        print(json.dumps({"part": part, "us_p50": round(p50), "us_p10": round(p10)}))
    print(json.dumps({"batch": args.batch, "calls": args.calls, "loadavg": os.getloadavg()}))


if __name__ == "__main__":
    main()
