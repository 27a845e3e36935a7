"""Two checkouts asked the same recommendation requests, each app on its own copy of a shop's
store: their decision rows and their ``/metrics`` counts must be the same (BENCHMARKS §98).

A change to the request path outside the pipeline must leave what a request leaves behind as it
was, not only its body (``route_ab.py --same-answers``). Both apps live in one process
(``answer_ab.renamed_copy``, as ``route_ab.py``), each on its own store file, given the same
random users (an unknown one among them) at ``k=10``, ``k=3`` with ``exclude`` and ``k=5`` with
``recent``, alternately. Then each one's ``/metrics``: every ``recsmith_*`` series ending in
``_total`` or ``_count`` (durations and process figures left out) must be equal; and each
store's decision rows written since the start, in the order served, equal in every column but
the list's id, its time and its latency. Exits non-zero naming what differs.

    cp store.sqlite* /tmp/a/; cp store.sqlite* /tmp/b/
    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/same_log_ab.py /tmp/large \
        --against /tmp/main/src --stores /tmp/a/store.sqlite /tmp/b/store.sqlite --users 100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from answer_ab import renamed_copy
from route_ab import ask

#: A count series of ``/metrics``: its name with labels, and its value
COUNTS = re.compile(rb"^(recsmith_\w*(?:_total|_count)(?:\{[^}]*\})?) (\S+)$", re.M)
#: The decision row's columns a request decides (not its id, time or latency)
ROW = (
    "SELECT unit, unit_kind, route, placement, release, experiment, variant, page_view, size, "
    "items, assignment_propensity, arm, arm_propensity, arm_context FROM decisions "
    "WHERE served_at >= ? ORDER BY served_at"
)
ASKED = ((b"k=10"), (b"k=3&exclude=i00001,i00002"), (b"k=5&recent=i00010"))


async def drive(apps: dict[str, Any], shop: Path, users: int) -> dict[str, dict[bytes, bytes]]:
    """Every app asked the same requests, then its ``/metrics`` count series."""
    known = (shop / "users.txt").read_text().split()
    secret = (shop / "secret").read_text().strip().encode()
    asked = list(np.random.default_rng(1).choice([*known, "nobody-new"], users))
    counts: dict[str, dict[bytes, bytes]] = {}
    base, this = apps.values()
    async with base.router.lifespan_context(base), this.router.lifespan_context(this):
        for app in apps.values():
            ranker = getattr(app.state.runtime.bundle, "ranker", None)
            await asyncio.to_thread(getattr(ranker, "wait_compiled", lambda: None))
        for user in asked:
            for query in ASKED:
                for name, app in apps.items():
                    path = f"/v1/users/{user}/recommendations"
                    if await ask(app, "GET", path, query, secret, b"") != 200:
                        sys.exit(f"{name}: GET {path}?{query.decode()} did not answer 200")
        for name, app in apps.items():
            body = bytearray()
            await ask(app, "GET", "/metrics", b"", secret, b"", body)
            counts[name] = {
                m.group(1): m.group(2)
                for m in COUNTS.finditer(bytes(body))
                if b"seconds" not in m.group(1) and b"process" not in m.group(1)
            }
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a serve_load.py --workdir: model, users, secret")
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--stores", type=Path, nargs=2, required=True, help="two store copies")
    parser.add_argument("--users", type=int, default=100)
    args = parser.parse_args()
    os.environ["RECSMITH_SERVING__MODEL_DIR"] = str(args.shop / "model")
    os.environ["RECSMITH_SERVING__CACHE_ENTRIES"] = "0"
    os.environ["RECSMITH_AUTH__EXPOSE_METRICS"] = "open"
    started_us = time.time_ns() // 1000
    with tempfile.TemporaryDirectory() as tmp:
        renamed_copy(args.against, Path(tmp))
        sys.path.insert(0, tmp)
        from recsmith_base.config import Settings as BaseSettings  # type: ignore
        from recsmith_base.serving.app import create_app as base_app  # type: ignore

        from recsmith.config import Settings
        from recsmith.serving.app import create_app

        apps = {}
        for name, store, make, settings in (
            ("against", args.stores[0], base_app, BaseSettings),
            ("this", args.stores[1], create_app, Settings),
        ):
            os.environ["RECSMITH_STORE__URL"] = f"sqlite:///{store}"
            apps[name] = make(settings())
        counts = asyncio.run(drive(apps, args.shop, args.users))
    rows = {}
    for name, store in zip(apps, args.stores, strict=True):
        with sqlite3.connect(store) as conn:
            rows[name] = conn.execute(ROW, (started_us,)).fetchall()
    series = counts["against"].keys() | counts["this"].keys()
    differ = sorted(s for s in series if counts["against"].get(s) != counts["this"].get(s))
    print(f"/metrics: {len(series)} count series, {len(differ)} differ {differ[:5]}")
    print(
        f"decision rows: {len(rows['against'])} and {len(rows['this'])}, "
        f"equal in order: {rows['against'] == rows['this']}"
    )
    if differ or rows["against"] != rows["this"] or not rows["this"]:
        sys.exit("what the requests left behind differs")


if __name__ == "__main__":
    main()
