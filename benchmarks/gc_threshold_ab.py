"""What CPython's young-collection threshold costs a served recommendation request, one app in
one process, the threshold switched between rounds (issue #19, BENCHMARKS §137).

A serving worker raises it from 700 to ``worker_process.YOUNG_COLLECTION_EVERY``
(``settle_worker``). The threshold is one per process, so unlike ``route_ab.py`` this serves a
single checkout's app (``create_app``, lifespan and all, the decision log on, the response cache
off) on a copy of a built shop, and asks it rounds of ``ROUTES["recommendations"]`` (random
known users, ``?k=10``) ``--concurrency`` at a time (1: each request alone, as an open loop at a
modest rate answers them), the sides in a rotated order each round: ``700``, ``raised`` and
``700 again`` (the A/A: the spread between two rounds of the same setting). Per side: process
CPU per request (the decision writer's thread included: its buffered lists are what the young
collections walk), the collector's own CPU per request (``gc.callbacks``, the loop thread's
``thread_time`` around each collection) and collections per 1,000 requests; medians over the
rounds and the paired ratios against ``700``.

    cd benchmarks && OPENBLAS_NUM_THREADS=1 PYTHONPATH=../src:. python gc_threshold_ab.py \\
        /tmp/shop-copy --rounds 12 --requests 400 --same-answers 200

``--same-answers N`` first asks N users one at a time under each threshold: every body must be
the same but the list's id.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from calibration import calibration_line
from route_ab import _LIST_ID, ROUTES, ask, round_of

from recsmith.serving.worker_process import YOUNG_COLLECTION_EVERY

SIDES = {"700": 700, "raised": YOUNG_COLLECTION_EVERY, "700 again": 700}


class CollectorClock:
    """The collector's CPU (``thread_time`` from each collection's start to its stop) and its
    collections, counted while ``on``."""

    def __init__(self) -> None:
        self.spent, self.collections, self.on, self._start = 0.0, 0, False, 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, Any]) -> None:
        if not self.on:
            return
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.spent += time.thread_time() - self._start
            self.collections += 1


async def measure(args: argparse.Namespace, app: Any) -> dict[str, list[tuple[float, ...]]]:
    users = (args.shop / "users.txt").read_text().split()
    secret = (args.shop / "secret").read_text().strip().encode()
    rng = np.random.default_rng(0)
    clock = CollectorClock()
    older = gc.get_threshold()[1:]
    figures: dict[str, list[tuple[float, ...]]] = {side: [] for side in SIDES}
    async with app.router.lifespan_context(app):
        ranker = getattr(app.state.runtime.bundle, "ranker", None)
        await asyncio.to_thread(getattr(ranker, "wait_compiled", lambda: None))
        items = app.state.runtime.bundle.items.external_ids

        def draw(n: int) -> list[tuple[str, str]]:
            return list(zip(rng.choice(users, n), rng.choice(items, n), strict=True))

        await round_of(app, "recommendations", draw(300), secret, args.concurrency)
        if args.same_answers:
            await same_answers(app, [u for u, _ in draw(args.same_answers)], secret, older)
        gc.collect()
        gc.freeze()  # as ``settle_worker`` leaves a worker
        print(f"warm; measuring {args.rounds} rounds", flush=True)
        for r in range(args.rounds):
            asked = draw(args.requests)
            names = list(SIDES)
            for side in names[r % 3 :] + names[: r % 3]:
                gc.set_threshold(SIDES[side], *older)
                clock.spent, clock.collections, clock.on = 0.0, 0, True
                process, loop, _ = await round_of(
                    app, "recommendations", asked, secret, args.concurrency
                )
                clock.on = False
                n = len(asked)
                figures[side].append((process, loop, clock.spent / n, 1000 * clock.collections / n))
    return figures


async def same_answers(app: Any, users: list[str], secret: bytes, older: tuple[int, ...]) -> None:
    """Every user's body at each threshold, asked one at a time: equal but the list's id, or
    exit naming the first that differs."""
    method, path, query, _ = ROUTES["recommendations"]
    bodies: dict[str, list[bytes]] = {}
    for side in ("700", "raised"):
        gc.set_threshold(SIDES[side], *older)
        bodies[side] = []
        for user in users:
            answer = bytearray()
            await ask(app, method, path.replace("{user}", user), query, secret, b"", answer)
            bodies[side].append(_LIST_ID.sub(b"", bytes(answer)))
    differ = [u for u, a, b in zip(users, *bodies.values(), strict=True) if a != b]
    if differ:
        raise SystemExit(f"answers differ between thresholds, first for user {differ[0]!r}")
    print(f"same answers: {len(users)} of {len(users)} bodies equal but the list's id", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a copy of a serve_load.py --workdir (written)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=400, help="per round and side")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument(
        "--same-answers",
        type=int,
        default=0,
        metavar="N",
        help="first ask N users at each threshold and stop unless every body is the same",
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    os.environ["RECSMITH_STORE__URL"] = f"sqlite:///{args.shop / 'store.sqlite'}"
    os.environ["RECSMITH_SERVING__MODEL_DIR"] = str(args.shop / "model")
    os.environ["RECSMITH_SERVING__CACHE_ENTRIES"] = "0"
    from recsmith.config import Settings
    from recsmith.serving.app import create_app

    figures = asyncio.run(measure(args, create_app(Settings())))
    what = (
        "process CPU ms/req",
        "loop thread CPU ms/req",
        "collector CPU ms/req",
        "collections per 1,000 req",
    )
    for at, name in enumerate(what):
        cells = []
        for side, rounds in figures.items():
            values = [r[at] * (1 if at == 3 else 1e3) for r in rounds]
            cells.append(f"{side} {statistics.median(values):.4f}")
        print(f"{name}: " + ", ".join(cells))
        if at == 3:
            continue
        for side in ("raised", "700 again"):
            paired = [
                s[at] / b[at] for s, b in zip(figures[side], figures["700"], strict=True) if b[at]
            ]
            if paired:
                print(
                    f"  {side} / 700 round by round: median {statistics.median(paired):.3f} "
                    f"(range {min(paired):.3f}-{max(paired):.3f})"
                )


if __name__ == "__main__":
    main()
