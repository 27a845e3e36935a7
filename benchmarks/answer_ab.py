"""``Pipeline.answer`` of two checkouts in one process, call by call: the before/after figure that
holds on a machine shared with other jobs.

``answer_latency.py --against`` alternates fresh processes, so each side gets the machine of its
own minute; at a load average of 20 on 2 cores the same code moved by ±20 % between rounds.
Here the other checkout's ``recsmith`` package is copied into a temporary directory as
``recsmith_base`` (its imports renamed), both load the same model, and the two answer the same
users alternately (the order flipped every call), so both see the same moments of the machine.
Process CPU time and wall time per call, medians; per-stage wall times from ``Answer.timings``.

    .venv/bin/python benchmarks/answer_ab.py /tmp/large/model --against /tmp/main/src --calls 400

``--store``: each user's items read from that event store (``user_items``) and passed as
``extra_seen``, as a served request passes them: the id lookups and exclusions of a served call
(without it, the known users' exclusions are their training rows alone).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line

STAGES = ("retrieval", "ranking", "rerank")


def renamed_copy(src: Path, into: Path) -> None:
    """``src/recsmith`` copied to ``into/recsmith_base`` with every import of it renamed."""
    target = into / "recsmith_base"
    shutil.copytree(src / "recsmith", target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\brecsmith\.(?=[a-z_])", "recsmith_base.", text)
        text = re.sub(r"^from recsmith import", "from recsmith_base import", text, flags=re.M)
        path.write_text(text)


def ab_parser(doc: str, store: bool = True) -> argparse.ArgumentParser:
    """The arguments of a same-process A/B (this one, ``query_rank_ab.py``, ``rerank_ab.py``,
    ``answer_tail_ab.py``): the model, the other checkout, and (``store``) a store whose items
    the users pass as ``extra_seen``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    if store:
        parser.add_argument("--store", help="an event store URL: users' items as extra_seen")
    return parser


@contextmanager
def base_importable(src: Path) -> Iterator[None]:
    """``src``'s package importable as ``recsmith_base`` inside the block."""
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(src, Path(tmp))
        sys.path.insert(0, tmp)
        yield


def load_pair(model_dir: Path) -> tuple[Any, Any]:
    """This checkout's and the other's pipeline of ``model_dir`` (inside ``base_importable``),
    each ranker and each side's ``row_kernel`` (features, anchors, MMR's few-query walk)
    compiled before anything is timed."""
    from recsmith_base.pipeline.artifact import load_artifact as load_base  # type: ignore
    from recsmith_base.ranking import row_kernel as base_kernel  # type: ignore

    from recsmith.pipeline.artifact import load_artifact
    from recsmith.ranking import row_kernel

    this, base = load_artifact(model_dir), load_base(model_dir)
    for pipe in (this, base):
        getattr(pipe.ranker, "wait_compiled", lambda: None)()
    for kernel in (row_kernel, base_kernel):
        kernel.wait(300)
    return this, base


def main() -> None:
    parser = ab_parser(__doc__)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--batch", type=int, default=1, help="users per call")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    with base_importable(args.against):
        this, base = load_pair(args.model_dir)
        pipes = {"against": base, "this": this}
        gc.collect()
        gc.freeze()
        known = np.asarray(pipes["this"].bundle.users.external_ids, dtype=object)
        users = np.random.default_rng(0).choice(known, size=(args.calls, args.batch))
        seen = stored_items(args.store, users) if args.store else None

        def asked(row: np.ndarray) -> dict[str, object]:
            return {} if seen is None else {"extra_seen": [seen[u] for u in row]}

        first: dict[str, float] = {}
        for i, row in enumerate(users[: min(20, args.calls)]):  # warm-up
            for name, pipe in pipes.items():
                started = time.perf_counter()
                pipe.answer(row, 10, **asked(row))
                if i == 0:  # what a worker's first request after loading pays
                    first[name] = time.perf_counter() - started
        cpu: dict[str, list[float]] = {name: [] for name in pipes}
        wall: dict[str, list[float]] = {name: [] for name in pipes}
        stages: dict[str, dict[str, list[float]]] = {n: {s: [] for s in STAGES} for n in pipes}
        for i, row in enumerate(users):
            for name in list(pipes)[:: 1 if i % 2 == 0 else -1]:
                started, cpu_started = time.perf_counter(), time.process_time()
                ans = pipes[name].answer(row, 10, **asked(row))
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - cpu_started)
                for stage in STAGES:
                    stages[name][stage].append(ans.timings.get(stage, 0.0))
    per_user = 1e3 / args.batch
    out = {}
    for name in pipes:
        out[name] = {
            "cpu_ms_per_user": round(statistics.median(cpu[name]) * per_user, 3),
            "wall_ms_per_user": round(statistics.median(wall[name]) * per_user, 3),
            **tail_ms(wall[name], cpu[name], first[name]),
            **{
                f"{s}_ms": round(statistics.median(v) * per_user, 3)
                for s, v in stages[name].items()
            },
        }
        print(json.dumps({"code": name, "batch": args.batch, "calls": args.calls, **out[name]}))
    ratio = out["this"]["cpu_ms_per_user"] / out["against"]["cpu_ms_per_user"]
    print(json.dumps({"cpu_ratio_this_to_against": round(ratio, 3), "loadavg": os.getloadavg()}))


def tail_ms(wall: list[float], cpu: list[float], first: float) -> dict[str, float]:
    """A call's wall and CPU time (not per user) at the 90th, 99th and 99.9th percentiles and
    their maxima, and the first call's wall time after loading: the tail a served request waits
    behind, which the medians above leave out. On a shared machine the wall tail is mostly other
    jobs'; the CPU tail is the calls' own work (a collection, a first-call build) (BENCHMARKS
    §131)."""
    out = {}
    for label, times in (("call", wall), ("cpu", cpu)):
        p90, p99, p999 = np.percentile(times, [90, 99, 99.9]) * 1e3
        out |= {
            f"{label}_p90_ms": round(float(p90), 3),
            f"{label}_p99_ms": round(float(p99), 3),
            f"{label}_p999_ms": round(float(p999), 3),
            f"{label}_max_ms": round(max(times) * 1e3, 3),
        }
    return {**out, "first_call_ms": round(first * 1e3, 3)}


def stored_items(url: str, users: np.ndarray) -> dict[str, list[str]]:
    """Each drawn user's items as the serving route reads them (``EventStore.user_items``)."""
    from recsmith.store.open import open_store

    store = open_store(url)
    try:
        return {u: store.user_items(u) for u in set(users.ravel().tolist())}
    finally:
        store.close()


if __name__ == "__main__":
    main()
