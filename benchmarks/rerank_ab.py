"""Re-ranking and the reasons' anchors of two checkouts in one process, call by call: the
before/after CPU of the stages a coalesced ``Pipeline.answer`` runs after ranking.

The other checkout's package is loaded as ``recsmith_base`` (``answer_ab.renamed_copy``); both
load the same model. The candidates of random known users (this checkout's retrieval and
ranking, the popular filler beneath, as ``mmr_ab.py`` builds them) go through each side's
``Pipeline.finalise`` and then, this side's final rows, through each side's ``anchor_items``,
alternating call by call (the order flipped every round) and counting process CPU time, so the
other jobs on a shared machine do not decide the comparison. Also checks that both sides give
identical final rows and anchors.

    .venv/bin/python benchmarks/rerank_ab.py /tmp/large/model --against /tmp/main/src
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import ab_parser, base_importable, load_pair
from calibration import calibration_line


def main() -> None:
    parser = ab_parser(__doc__, store=False)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--inputs", type=int, default=20, help="candidate sets per batch size")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with base_importable(args.against):
        from recsmith_base.pipeline.anchors import anchor_items as base_anchors  # type: ignore

        from recsmith.pipeline.anchors import anchor_items
        from recsmith.retrieval.merge import append_below

        this, base = load_pair(args.model_dir)
        finalise = {"this": this.finalise, "against": base.finalise}
        anchors = {"this": anchor_items, "against": base_anchors}
        ids = np.asarray(this.bundle.users.external_ids, dtype=object)
        rng = np.random.default_rng(1)
        for batch in map(int, args.batches.split(",")):
            inputs = []
            for _ in range(args.inputs):
                q = this.queries(rng.choice(ids, batch), None, None, None)
                cands = append_below(
                    this.candidates(q, 10), this.fallback.retrieve(q, 30), "popular"
                )
                inputs.append((cands, q))
            cpu: dict[str, dict[str, list[float]]] = {
                stage: {"this": [], "against": []} for stage in ("rerank", "anchors")
            }
            same = True
            for rnd in range(args.rounds):
                for cands, q in inputs:
                    out = {}
                    for side in ("this", "against")[:: 1 if rnd % 2 else -1]:
                        started = time.process_time()
                        final = finalise[side](cands, q, 10)
                        cpu["rerank"][side].append(time.process_time() - started)
                        out[side] = final
                    final = out["this"]
                    same &= bool(
                        np.array_equal(final.items, out["against"].items)
                        and np.array_equal(final.query, out["against"].query)
                    )
                    named = {}
                    for side in ("this", "against")[:: 1 if rnd % 2 else -1]:
                        started = time.process_time()
                        named[side] = anchors[side](final, q.recent, this.anchor_matrices)
                        cpu["anchors"][side].append(time.process_time() - started)
                    same &= bool(np.array_equal(named["this"], named["against"]))
            cells = []
            for stage, sides in cpu.items():
                a, b = (statistics.median(sides[s]) * 1e3 for s in ("this", "against"))
                cells.append(f"{stage} {a:.3f} against {b:.3f} ms (ratio {a / b:.2f})")
            print(f"batch {batch:3d}: " + "; ".join(cells) + f"; identical: {same}", flush=True)


if __name__ == "__main__":
    main()
