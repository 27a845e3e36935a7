"""What routing alone costs a request, through ``serving.fast_lane``'s index and through FastAPI's
scan, in one process (BENCHMARKS §55).

The app is ``create_app``'s with default settings; every route's ``handle`` is replaced by a
no-op, so a request stops where routing hands it over, and each path is asked ``--requests``
times through ``FastLane`` and through the router's own ``app`` (the scan), in turn, ``--repeats``
times. Thread CPU µs per request. No store, model or middleware is involved.

    PYTHONPATH=src .venv/bin/python benchmarks/route_lookup.py
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from calibration import calibration_line

from recsmith.config import Settings
from recsmith.serving.app import create_app
from recsmith.serving.fast_lane import FastLane

PATHS = (
    "/v1/users/u1/recommendations",
    "/v1/items/i1/similar",
    "/v1/popular",
    "/health/live",
)


async def _nothing(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for a route's ``handle``: routing's work is all that is timed."""


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}


async def _per_request(app: Any, path: str, requests: int) -> float:
    started = time.thread_time()
    for _ in range(requests):
        await app(_scope(path), None, None)
    return (time.thread_time() - started) / requests * 1e6


async def measure(lane: FastLane, requests: int, repeats: int) -> None:
    for path in PATHS:
        timed: dict[str, list[float]] = {"index": [], "scan": []}
        for _ in range(repeats):
            timed["index"].append(await _per_request(lane, path, requests))
            timed["scan"].append(await _per_request(lane.app, path, requests))
        shown = {k: ", ".join(f"{v:.1f}" for v in vs) for k, vs in timed.items()}
        print(f"GET {path}: index {shown['index']} us  scan {shown['scan']} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    app = create_app(Settings())
    lane = app.router.middleware_stack
    assert isinstance(lane, FastLane)
    for group in lane.index.by_count.values():
        for _, by_key in group:
            for lanes in by_key.values():
                for entry in lanes:
                    entry.context.original_route.handle = _nothing  # type: ignore[method-assign]
    asyncio.run(measure(lane, args.requests, args.repeats))


if __name__ == "__main__":
    main()
