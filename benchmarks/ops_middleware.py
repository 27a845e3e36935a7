"""What the app's outer layer (``serving.edge.Edge``: request id, error boundary, metrics, URL
and body checks, rollback watch) costs a request, without and with the rollback watch.

Each is timed around the same trivial ASGI app (it answers 200 with a 2-byte body), driven
directly (no sockets, no HTTP parser): the figure is the middleware's own work per request, which
is all it adds to a real request. The bare app is the same-run baseline.

    .venv/bin/python benchmarks/ops_middleware.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from calibration import calibration_line

from recsmith.config import LifecycleSettings
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.rollback import RollbackGuard
from recsmith.serving.edge import Edge
from recsmith.serving.metrics import Metrics

SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/v1/users/u1/recommendations",
    "headers": [(b"host", b"x"), (b"x-request-id", b"checkout-42")],
}


async def bare(scope: dict, receive: object, send: object) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]


async def _sink(message: dict) -> None:
    return None


async def _receive() -> dict:
    return {"type": "http.request", "body": b""}


async def per_request_us(app: object, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await app(SCOPE, _receive, _sink)  # type: ignore[operator]
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    print(calibration_line())
    guard = RollbackGuard(ModelRegistry(Path("/nonexistent")), LifecycleSettings())
    watching = RollbackGuard(ModelRegistry(Path("/nonexistent")), LifecycleSettings())
    watching.watch_release("v2")
    apps = {
        "bare app (baseline)": bare,
        "+ edge, no rollback watch": Edge(bare, Metrics.create(), 1024),
        "+ edge, rollback watch idle": Edge(bare, Metrics.create(), 1024, guard),
        "+ edge, watching a release": Edge(bare, Metrics.create(), 1024, watching),
    }
    base = None
    print("| app | µs per request | added µs |\n|---|---:|---:|")
    for name, app in apps.items():
        asyncio.run(per_request_us(app, 2_000))  # warm
        us = min(asyncio.run(per_request_us(app, args.requests)) for _ in range(3))
        base = us if base is None else base
        print(f"| {name} | {us:.2f} | {us - base:+.2f} |")


if __name__ == "__main__":
    main()
