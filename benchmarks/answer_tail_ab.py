"""The end of ``Pipeline.answer`` of two checkouts in one process, call by call: re-ranking
(``Pipeline.finalise``) and what follows it (the reasons' anchors, naming items, source names, the
Answer's lists), on the inputs real requests hand them.

``rerank_ab.py`` builds its own candidates (a popular filler of 30) and times ``anchor_items``
alone; here each side's own ``_top_k`` runs once per batch of random known users with its
``finalise`` wrapped, keeping the exact candidates and queries re-ranking was given and what
``_top_k`` returned. Then, alternating sides (the order flipped every call), thread CPU time of
``finalise`` on those candidates ("rerank") and of ``answer`` with ``_top_k`` answering the kept
result ("tail": everything ``answer`` does after it). Medians and 10th percentiles per batch, and
a check that both sides give the same final rows, lists, anchors and sources.

    .venv/bin/python benchmarks/answer_tail_ab.py /tmp/large/model --against /tmp/main/src
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import ab_parser, base_importable, load_pair
from calibration import calibration_line

K = 10


def captured(pipe: Any, users: np.ndarray) -> list[tuple[np.ndarray, tuple[Any, ...], Any]]:
    """Per batch of ``users``: the users, ``finalise``'s arguments, and ``_top_k``'s result."""
    out = []
    finalise, top_k = pipe.finalise, pipe._top_k
    seen: dict[str, tuple[Any, ...]] = {}

    def keep(cands: Any, queries: Any, k: int, rules: Any = (), diversity: Any = None) -> Any:
        seen["args"] = (cands, queries, k)
        return finalise(cands, queries, k, rules, diversity)

    pipe.finalise = keep
    for row in users:
        result = top_k(
            row,
            K,
            extra_seen=None,
            recent=None,
            context=None,
            timings={},
            rules=(),
            diversity=None,
            categories=(),
            include_seen=None,
        )
        out.append((row, seen["args"], result))
    del pipe.finalise  # the class's method again
    return out


def rerank(pipe: Any, case: tuple[np.ndarray, tuple[Any, ...], Any]) -> Any:
    return pipe.finalise(*case[1])


def tail(pipe: Any, case: tuple[np.ndarray, tuple[Any, ...], Any]) -> Any:
    pipe._top_k = lambda *args, **kw: case[2]
    try:
        return pipe.answer(case[0], K)
    finally:
        del pipe._top_k


def differing(pipes: dict[str, Any], cases: dict[str, list[Any]]) -> int:
    """Batches whose final rows, lists, anchors or sources differ between the two sides."""
    count = 0
    for a_case, b_case in zip(cases["this"], cases["against"], strict=True):
        fa, fb = rerank(pipes["this"], a_case), rerank(pipes["against"], b_case)
        a, b = tail(pipes["this"], a_case), tail(pipes["against"], b_case)
        same = all(
            np.array_equal(getattr(fa, c), getattr(fb, c)) for c in ("query", "items", "score")
        )
        same &= all(
            np.array_equal(x, y) for x, y in zip(a.lists.item_ids, b.lists.item_ids, strict=True)
        )
        count += not (same and a.anchors == b.anchors and a.sources == b.sources)
    return count


def main() -> None:
    parser = ab_parser(__doc__, store=False)
    parser.add_argument("--batch", type=int, default=16, help="users per call")
    parser.add_argument("--inputs", type=int, default=40, help="batches of random known users")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with base_importable(args.against):
        this, base = load_pair(args.model_dir)
        pipes = {"this": this, "against": base}
        known = np.asarray(pipes["this"].bundle.users.external_ids, dtype=object)
        users = np.random.default_rng(7).choice(known, size=(args.inputs, args.batch))
        cases = {name: captured(pipe, users) for name, pipe in pipes.items()}
        gc.collect()
        gc.freeze()
        parts: dict[str, Callable[[Any, Any], Any]] = {"rerank": rerank, "tail": tail}
        cpu = {name: {part: [] for part in parts} for name in pipes}  # type: ignore[var-annotated]
        for rnd in range(args.rounds):
            for i in range(args.inputs):
                for name in list(pipes)[:: 1 if (rnd + i) % 2 else -1]:
                    for part, run in parts.items():
                        started = time.thread_time_ns()
                        run(pipes[name], cases[name][i])
                        cpu[name][part].append((time.thread_time_ns() - started) / 1e3)
        for part in parts:
            cells = []
            for name in pipes:
                v = np.asarray(cpu[name][part])
                cells.append(f"{name} {np.median(v):.1f} (p10 {np.percentile(v, 10):.1f})")
            print(f"batch {args.batch} {part} µs: " + "; ".join(cells))
        total = {n: float(np.median(np.add(*cpu[n].values()))) for n in pipes}
        print(
            f"batch {args.batch} rerank + tail µs: this {total['this']:.1f}; against "
            f"{total['against']:.1f}; ratio {total['this'] / total['against']:.3f}; "
            f"batches differing: {differing(pipes, cases)} of {args.inputs}; "
            f"loadavg {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
