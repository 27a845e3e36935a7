"""The first request after a release is loaded: whether the release's ``seen`` and ``recent``
matrices carry scipy's canonical-format flag before any request (``format_checked`` at load),
and what a batch's first and second ``Pipeline.queries`` cost (thread CPU, µs) — the first one
pays the flag's O(nnz) pass over the mapped files where the load did not.

One load a process (the flag, once computed, stays): run it on each tree, alternating, e.g.
``PYTHONPATH=<tree>/src python benchmarks/first_request.py --model /work/shop-large/model``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from recsmith.pipeline.artifact import load_artifact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    started = time.thread_time()
    pipe = load_artifact(args.model)
    load_s = time.thread_time() - started
    seen, recent = pipe.bundle.seen, pipe.recent
    flagged = {
        n: "_has_canonical_format" in m.__dict__ for n, m in (("seen", seen), ("recent", recent))
    }
    users = np.asarray(pipe.bundle.users.external_ids[: args.batch], object)
    cost = []
    for _ in range(2):
        started = time.thread_time()
        pipe.queries(users, None, None, None)
        cost.append((time.thread_time() - started) * 1e6)
    print(
        f"flag at load: seen {flagged['seen']} recent {flagged['recent']}; load {load_s:.2f} s "
        f"CPU; queries (batch {args.batch}) first {cost[0]:.0f} µs, second {cost[1]:.0f} µs"
    )


if __name__ == "__main__":
    main()
