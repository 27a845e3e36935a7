"""Thread CPU of the recommendation route's own pieces outside ``Pipeline.answer``, each timed
around its call in one process (BENCHMARKS §147).

Why not a sampler: ``worker_cpu_profile.py``'s ``ITIMER_PROF`` ticks on the process's CPU, and a
tick is handled by the loop thread at its next bytecode, so the CPU of other threads (the
decision writer) and of the Python run before a call that releases the GIL (SQLite) lands on the
frame after it: in process, with ``route_ab.py``'s memoised answers, it put 35–45 % of the loop's
CPU in the stored-items read, which these wrappers time at 11–14 %. Here each piece is wrapped
by ``time.thread_time`` (~0.3 µs of its own, included in each figure), so a piece's figure is its
CPU on the loop thread whatever else runs.

One app (``create_app``, lifespan and all) on a ``serve_load.py`` shop, answers memoised as
``route_ab.py --outside`` does (the pipeline costs a dictionary look-up), ``--concurrency``
requests of ``GET /v1/users/{id}/recommendations`` in flight through the whole ASGI stack, one
fixed draw of ``--requests`` users asked ``--rounds`` times. Run it under each tree's
``PYTHONPATH`` in turn to compare them.

    cd benchmarks && PYTHONPATH=../src:. python route_parts.py /tmp/large --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from calibration import calibration_line
from route_ab import memoise_answers, round_of

#: (module, owner in it or None, function, label): the pieces timed, where the route calls them
PIECES = [
    ("recsmith.serving.stored_items", "StoredItems", "now", "stored items read (a flush's)"),
    ("recsmith.serving.metrics", "Metrics", "observe_answer", "metrics of a pipeline call"),
    ("recsmith.serving.metrics", "Metrics", "observe_request", "metrics of a request"),
    *(
        ("recsmith.serving.routers.recommend", None, name, name)
        for name in (
            "_listing",
            "_record",
            "recommendation_response",
            "live_view",
            "uuid4_hex",
            "withheld_reason",
            "path_id",
            "_item_ids",
            "since_arrival_ms",
            "contextual_choice",
            "choose",
            "counting",
            "placement_bundle",
            "_categories",
            "asked_rules",
            "_profile",
            "list_length",
        )
    ),
    ("recsmith.serving.auth", None, "hash_key", "hash_key (auth)"),
]


def timed(spent: Counter[str], calls: Counter[str]) -> None:
    """Each of ``PIECES`` replaced where the route looks it up by a wrapper adding its thread
    CPU to ``spent`` and its calls to ``calls``."""
    import importlib

    for module, owner, name, label in PIECES:
        where: Any = importlib.import_module(module)
        if owner is not None:
            where = getattr(where, owner)
        call = getattr(where, name)

        @functools.wraps(call)
        def wrapper(*args: Any, _call: Any = call, _label: str = label, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return _call(*args, **kwargs)
            finally:
                spent[_label] += time.thread_time() - started
                calls[_label] += 1

        setattr(where, name, wrapper)


async def measure(args: argparse.Namespace) -> None:
    from recsmith.config import Settings
    from recsmith.serving.app import create_app

    app = create_app(Settings())
    users = (args.shop / "users.txt").read_text().split()
    secret = (args.shop / "secret").read_text().strip().encode()
    rng = np.random.default_rng(0)
    async with app.router.lifespan_context(app):
        bundle = app.state.runtime.bundle
        items = bundle.items.external_ids
        asked = list(
            zip(rng.choice(users, args.requests), rng.choice(items, args.requests), strict=True)
        )
        await asyncio.to_thread(getattr(getattr(bundle, "ranker", None), "wait_compiled", int))
        memoise_answers(bundle)
        for _ in range(2):  # the answers memoised, caches filled
            await round_of(app, "recommendations", asked, secret, args.concurrency)
        spent: Counter[str] = Counter()
        calls: Counter[str] = Counter()
        timed(spent, calls)
        gc.collect()
        gc.freeze()
        loop_started = time.thread_time()
        for _ in range(args.rounds):
            await round_of(app, "recommendations", asked, secret, args.concurrency)
        loop_spent = time.thread_time() - loop_started
    n = args.rounds * args.requests
    print(f"event-loop thread CPU µs a request (wrappers included): {loop_spent / n * 1e6:.1f}")
    print("| piece | calls a request | µs a call | µs a request |")
    print("|---|---:|---:|---:|")
    for label, seconds in spent.most_common():
        print(
            f"| {label} | {calls[label] / n:.3f} | {seconds / calls[label] * 1e6:.2f} "
            f"| {seconds / n * 1e6:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a serve_load.py --workdir: model, store, users")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=800, help="per round")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    os.environ["RECSMITH_STORE__URL"] = f"sqlite:///{args.shop / 'store.sqlite'}"
    os.environ["RECSMITH_SERVING__MODEL_DIR"] = str(args.shop / "model")
    os.environ["RECSMITH_SERVING__CACHE_ENTRIES"] = "0"
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
