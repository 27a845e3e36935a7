"""What a served recommendation request costs the server outside the network, two checkouts in
one process: the before/after figure of the request path around the pipeline (BENCHMARKS §43).

Between ``serve_load.py`` runs at a load average of 13–21 on 2 cores the plain baseline's own
CPU per request moved by a third (0.29 to 0.39 ms), and the server's by as much as the change
to measure. Here, as in ``answer_ab.py``, the other checkout's package is copied as
``recsmith_base``, and both build their app (``create_app``, lifespan and all) on the same model
and store; rounds of ``GET /v1/users/{id}/recommendations`` (random known users, ``?k=10``, the
key in a header, ``--concurrency`` requests in flight so the coalescer batches as under load) go
to each app in turn through its whole ASGI stack, the order flipped every round. Process CPU per
request, medians over the rounds, and the same for the event loop's thread alone (the request
path without the background writers, which store either side's lists in either side's rounds);
the response cache off, as ``serve_load.py`` serves. No socket: uvicorn's parsing and writing
are outside both.

    cd benchmarks && ../.venv/bin/python route_ab.py /tmp/large --against /tmp/main/src
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as each server worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from answer_ab import renamed_copy
from calibration import calibration_line

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def get(app: App, path: str, query: bytes, secret: bytes) -> int:
    """One GET through ``app``'s ASGI stack; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"authorization", b"Bearer " + secret)],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    status = [0]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


async def round_of(
    app: App, users: list[str], secret: bytes, concurrency: int
) -> tuple[float, float]:
    """Process and event-loop thread CPU seconds per request for ``users``, ``concurrency`` in
    flight. The process's includes both apps' background threads (each decision log's writer
    stores its lists every ``flush_interval_s``, whichever app's round is running then); the
    loop thread's is the request path alone, the coalesced pipeline calls included."""
    queue = iter(users)
    statuses: list[int] = []

    async def client() -> None:
        for user in queue:
            statuses.append(await get(app, f"/v1/users/{user}/recommendations", b"k=10", secret))

    started, looped = time.process_time(), time.thread_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    spent, loop_spent = time.process_time() - started, time.thread_time() - looped
    if set(statuses) != {200}:
        sys.exit(f"not every request answered 200: {sorted(set(statuses))}")
    return spent / len(users), loop_spent / len(users)


async def measure(
    args: argparse.Namespace, apps: dict[str, Any]
) -> dict[str, list[tuple[float, float]]]:
    users = (args.shop / "users.txt").read_text().split()
    secret = (args.shop / "secret").read_text().strip().encode()
    rng = np.random.default_rng(0)
    against, this = apps["against"], apps["this"]
    async with against.router.lifespan_context(against), this.router.lifespan_context(this):
        for app in apps.values():  # warm-up: the ranker compiled, caches filled
            ranker = getattr(app.state.runtime.bundle, "ranker", None)
            await asyncio.to_thread(getattr(ranker, "wait_compiled", lambda: None))
            await round_of(app, list(rng.choice(users, 200)), secret, args.concurrency)
        gc.collect()
        gc.freeze()
        cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
        for r in range(args.rounds):
            asked = list(rng.choice(users, args.requests))
            for name in list(apps)[:: 1 if r % 2 == 0 else -1]:
                cpu[name].append(await round_of(apps[name], asked, secret, args.concurrency))
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a serve_load.py --workdir: model, store, users")
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="per round and side")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    os.environ["RECSMITH_STORE__URL"] = f"sqlite:///{args.shop / 'store.sqlite'}"
    os.environ["RECSMITH_SERVING__MODEL_DIR"] = str(args.shop / "model")
    os.environ["RECSMITH_SERVING__CACHE_ENTRIES"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        from recsmith_base.config import Settings as BaseSettings  # type: ignore
        from recsmith_base.serving.app import create_app as base_app  # type: ignore

        from recsmith.config import Settings
        from recsmith.serving.app import create_app

        apps = {"against": base_app(BaseSettings()), "this": create_app(Settings())}
        cpu = asyncio.run(measure(args, apps))
    for what, at in (("process", 0), ("event-loop thread", 1)):
        spent = {n: [round_cpu[at] * 1e3 for round_cpu in v] for n, v in cpu.items()}
        before, after = (statistics.median(spent[n]) for n in ("against", "this"))
        print(
            f"{what} CPU ms per request, median of {args.rounds} rounds x {args.requests} "
            f"requests (concurrency {args.concurrency}): against {before:.3f}  this {after:.3f}  "
            f"difference {before - after:+.3f}  ratio {after / before:.3f}"
        )
        spread = {n: f"{min(v):.3f}-{max(v):.3f}" for n, v in spent.items()}
        print("  range over rounds:", spread)


if __name__ == "__main__":
    main()
