"""In-process cost of ``Pipeline.answer``: one user per call and batches of 16, per stage.

Loads a trained pipeline (``serve_load.py --workdir DIR`` builds one in ``DIR/model``), freezes the
loaded objects out of the garbage collector as the server does, and times warm calls for known
users drawn at random (the same users in every run). ``--against SRC`` measures another checkout
(its ``src``) in the same run, interleaved round by round in fresh processes, so a before/after
comparison shares the machine's state; ``--profile`` prints cProfile's top functions instead.
``cpu_ms_per_user`` is the process's CPU time per call (one compute thread): on a machine shared
with other jobs it leaves out the time the process waited for a core, which wall time does not.

    .venv/bin/python benchmarks/answer_latency.py /tmp/large/model --against ../main/src
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line


def measure(model_dir: Path, calls: int, batch: int, profile: bool) -> dict[str, float]:
    """Median ms per user over ``calls`` calls of ``batch`` users, and per stage."""
    from recsmith.pipeline.artifact import load_artifact

    pipe = load_artifact(model_dir)
    # measure the compiled ranker, built in the background (a checkout from before that, run
    # by --against, compiled it at load and has no wait_compiled)
    getattr(pipe.ranker, "wait_compiled", lambda: None)()
    gc.collect()
    gc.freeze()
    known = np.asarray(pipe.bundle.users.external_ids, dtype=object)
    users = np.random.default_rng(0).choice(known, size=(calls, batch))
    for row in users[: min(20, calls)]:  # warm-up
        pipe.answer(row, 10)
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        for row in users:
            pipe.answer(row, 10)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return {}
    total, cpu, stages = [], [], {"retrieval": [], "ranking": [], "rerank": []}
    for row in users:
        started, cpu_started = time.perf_counter(), time.process_time()
        ans = pipe.answer(row, 10)
        total.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        for name, values in stages.items():
            values.append(ans.timings.get(name, 0.0))
    per_user = 1e3 / batch
    out = {
        "ms_per_user": statistics.median(total) * per_user,
        "cpu_ms_per_user": statistics.median(cpu) * per_user,
    }
    out.update({f"{k}_ms": statistics.median(v) * per_user for k, v in stages.items()})
    return {k: round(v, 3) for k, v in out.items()}


def interleaved(args: argparse.Namespace) -> None:
    """Rounds alternating this checkout and ``--against``, each in a fresh process."""
    ours = str(Path(__file__).resolve().parent.parent / "src")
    runs: dict[str, list[dict[str, float]]] = {"this": [], "against": []}
    for _ in range(args.rounds):
        for label, src in (("against", args.against), ("this", ours)):
            out = subprocess.run(
                [
                    *(sys.executable, __file__, str(args.model_dir)),
                    *("--calls", str(args.calls), "--batch", str(args.batch), "--json-only"),
                ],
                env={**os.environ, "PYTHONPATH": src},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            row = json.loads(out.strip().splitlines()[-1])
            runs[label].append({k: v for k, v in row.items() if k != "batch"})
    for label, rows in runs.items():
        merged = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
        print(json.dumps({"code": label, "batch": args.batch, "rounds": args.rounds, **merged}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1, help="users per call")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--against", help="another checkout's src, measured interleaved")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.json_only:
        print(calibration_line(), flush=True)
    if args.against:
        interleaved(args)
        return
    result = measure(args.model_dir, args.calls, args.batch, args.profile)
    if result:
        print(json.dumps({"batch": args.batch, **result}))


if __name__ == "__main__":
    main()
