"""Re-ranking CPU time, closed-form category MMR against the greedy step loop, in one process.

Loads a trained pipeline (``serve_load.py --workdir DIR`` builds one in ``DIR/model``), builds the
candidates of random known users in batches of 1 to 64, and times ``Pipeline.finalise`` with the
configured category similarity (closed form) and with the same similarity behind a type MMR does
not recognise (``tests/rerank/stepwise.py``: the step loop), alternating call by call and counting
process CPU time, so other jobs on a shared machine do not decide the comparison. Also checks
that both give identical lists.

    .venv/bin/python benchmarks/mmr_ab.py /tmp/large/model
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "rerank"))

import numpy as np
from calibration import calibration_line
from stepwise import StepwiseCategories

from recsmith.pipeline.artifact import load_artifact
from recsmith.rerank import CategorySimilarity
from recsmith.retrieval.merge import append_below


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--batches", default="1,4,16,32,64")
    parser.add_argument("--inputs", type=int, default=40, help="candidate sets per batch size")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    closed = load_artifact(args.model_dir)
    if closed.ranker is not None:  # measure the compiled ranker, built in the background
        closed.ranker.wait_compiled()
    gc.collect()
    gc.freeze()
    stepwise = copy.copy(closed)
    category = CategorySimilarity(closed.table.category)
    stepwise.reranker = replace(closed.reranker, similarity=StepwiseCategories(category))
    ids = np.asarray(closed.bundle.users.external_ids, dtype=object)
    rng = np.random.default_rng(1)
    for batch in map(int, args.batches.split(",")):
        inputs = []
        for _ in range(args.inputs):
            q = closed.queries(rng.choice(ids, batch), None, None, None)
            cands = closed.candidates(q, 10)
            inputs.append((append_below(cands, closed.fallback.retrieve(q, 30), "popular"), q))
        cpu: dict[str, list[float]] = {"closed": [], "step": []}
        pair = (("closed", closed), ("step", stepwise))
        for rep in range(5):
            for cands, q in inputs:
                for name, pipe in pair if rep % 2 else pair[::-1]:
                    started = time.process_time()
                    pipe.finalise(cands, q, 10)
                    cpu[name].append(time.process_time() - started)
        same = all(
            np.array_equal(closed.finalise(c, q, 10).items, stepwise.finalise(c, q, 10).items)
            for c, q in inputs
        )
        a, b = (statistics.median(cpu[n]) * 1e3 for n in ("closed", "step"))
        print(
            f"batch {batch:3d}: re-ranking CPU ms per call, closed form {a:.3f}, step loop "
            f"{b:.3f}, ratio {a / b:.2f}, identical lists: {same}"
        )


if __name__ == "__main__":
    main()
