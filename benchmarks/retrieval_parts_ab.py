"""Retrieval's parts inside ``Pipeline.answer`` of two checkouts, call by call: each candidate
source, ``merge``, ``append_below`` (the filler), ``Pipeline.queries`` and
``segment_fallback``, timed where a served request runs them.

``candidate_stages_ab.py`` times stages on one captured batch in a tight loop, where the caches
stay warm: a per-thread table that wins there can lose inside a request, whose other stages
evict it (BENCHMARKS §109: a slot table for ``merge`` won 72 → 44 µs alone and lost 159 → 166 µs
here). Here both checkouts (the other copied as ``recsmith_base``, as ``answer_ab.py`` does)
answer the same batches alternately, the order flipped every call, with each part's methods
wrapped to add up its thread CPU time within the call. The sources are named by their
pipeline names (``src:NAME``), the static ones (trending, new arrivals and the fallback
filler, timed apart from the ``segment_fallback`` around it) together as ``src:static``: a tree
that answers them in one pass times them together. ``in-scope`` is the sum of every part;
medians and 10th percentiles, µs a call. ``--stored N`` passes each user N items as
``extra_seen`` (as a served request's stored items), every other user none.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/retrieval_parts_ab.py /tmp/large/model \\
        --against /tmp/main/src --batch 16 --calls 400
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line

#: the parts a call's time is split into; anything else in ``answer`` is the rest of the request
WHOLE = "answer"
#: every static source's part (trending, new arrivals, the popularity filler), however answered
STATIC = "src:static"


class Clock:
    """Thread CPU time per part, added up within the current call of the current side. A part
    timed inside another (the filler's source inside ``segment_fallback``) counts in its own
    line only: the outer part's figure is its time less the parts timed within it, so the
    in-scope sum counts each microsecond once (``answer``, the whole, keeps everything)."""

    def __init__(self) -> None:
        self.side = "this"
        self.spent: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.inner: list[float] = []  # per open timed call: its timed parts' time so far

    def wrap(self, owner: Any, attr: str, label: Callable[[tuple[Any, ...]], str]) -> None:
        inner = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            self.inner.append(0.0)
            try:
                return inner(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                within = self.inner.pop()
                part = label(args)
                self.spent[self.side][part] += spent if part == WHOLE else spent - within
                if self.inner:
                    self.inner[-1] += spent

        setattr(owner, attr, timed)


def instrumented(package: str, clock: Clock) -> Callable[[Path], Any]:
    """``package``'s ``load_artifact``, its sources, ``merge`` and ``append_below`` timed."""
    sources = importlib.import_module(f"{package}.retrieval.sources")
    ann = importlib.import_module(f"{package}.retrieval.ann")
    training = importlib.import_module(f"{package}.pipeline.training")
    runtime = importlib.import_module(f"{package}.pipeline.runtime")
    for cls in (sources.ModelSource, ann.ANNSource):
        clock.wrap(cls, "retrieve", lambda args: f"src:{args[0].name}")
    # the static sources (trending, new arrivals, the filler) as one part: a tree that answers
    # them in one pass (``static_proposals``) times them together
    clock.wrap(sources.StaticSource, "retrieve", lambda args: STATIC)
    if hasattr(training, "static_proposals"):
        clock.wrap(training, "static_proposals", lambda args: STATIC)  # as ``propose`` calls it
    for module in (training, runtime):  # as ``retrieve`` calls it, or the pipeline itself
        if hasattr(module, "merge"):
            clock.wrap(module, "merge", lambda args: "merge")
    clock.wrap(runtime, "append_below", lambda args: "append_below")
    clock.wrap(runtime.Pipeline, "queries", lambda args: "queries")
    clock.wrap(runtime.Pipeline, "segment_fallback", lambda args: "segment_fallback")
    clock.wrap(runtime.Pipeline, "answer", lambda args: WHOLE)
    return importlib.import_module(f"{package}.pipeline.artifact").load_artifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--batch", type=int, default=16, help="users per call")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stored", type=int, default=-1, help="extra_seen items every other user (-1: none)"
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        pipes = {
            "against": instrumented("recsmith_base", clock)(args.model_dir),
            "this": instrumented("recsmith", clock)(args.model_dir),
        }
        for pipe in pipes.values():
            getattr(pipe.ranker, "wait_compiled", lambda: None)()
        gc.collect()
        gc.freeze()
        known = np.asarray(pipes["this"].bundle.users.external_ids, dtype=object)
        rng = np.random.default_rng(args.seed)
        users = rng.choice(known, size=(args.calls, args.batch))
        items = np.asarray(pipes["this"].bundle.items.external_ids, dtype=object)
        # as the coalescer hands a served batch its users' stored items (most of them none)
        seen = (
            None
            if args.stored < 0
            else [
                [
                    rng.choice(items, size=args.stored).tolist() if u % 2 else []
                    for u in range(args.batch)
                ]
                for _ in range(args.calls)
            ]
        )
        for i, row in enumerate(users[: min(20, args.calls)]):  # warm-up
            for pipe in pipes.values():
                pipe.answer(row, 10, extra_seen=None if seen is None else seen[i])
        per_call: dict[str, dict[str, list[float]]] = {n: defaultdict(list) for n in pipes}
        for i, row in enumerate(users):
            for side in list(pipes)[:: 1 if i % 2 == 0 else -1]:
                clock.side = side
                clock.spent[side].clear()
                pipes[side].answer(row, 10, extra_seen=None if seen is None else seen[i])
                spent = clock.spent[side]
                for part, seconds in spent.items():
                    per_call[side][part].append(seconds)
                per_call[side]["in-scope"].append(
                    sum(s for part, s in spent.items() if part != WHOLE)
                )
    parts = sorted(
        (p for p in per_call["against"] if p in per_call["this"]),
        key=lambda p: -statistics.median(per_call["against"][p]),
    )
    for part in parts:
        figures = {
            side: [round(float(np.percentile(per_call[side][part], q)) * 1e6) for q in (50, 10)]
            for side in pipes
        }
        ratio = figures["this"][0] / max(figures["against"][0], 1)
        print(
            json.dumps(
                {
                    "part": part,
                    "against_us_p50_p10": figures["against"],
                    "this_us_p50_p10": figures["this"],
                    "ratio_p50": round(ratio, 3),
                }
            )
        )
    print(
        json.dumps(
            {
                "batch": args.batch,
                "calls": args.calls,
                "stored": args.stored,
                "loadavg": os.getloadavg(),
            }
        )
    )


if __name__ == "__main__":
    main()
