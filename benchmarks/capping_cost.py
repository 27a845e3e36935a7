"""What capping adds to a recommendation request: the decision-log read per request, and the
synchronous store write of a page view's list.

One app per configuration over the same SQLite store and ItemKNN model (checkerboard data), driven
in-process (``TestClient``: no sockets); each user first gets ``--history`` lists so the capping
read has rows to count. The same requests are timed in every configuration, rounds interleaved,
and the median per request is reported beside the uncapped baseline of the same run.

    .venv/bin/python benchmarks/capping_cost.py [--users 50 --history 40 --rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from calibration import calibration_line
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events

CONFIGS = {
    "capping off (baseline)": ({}, ""),
    "capping on, drop": ({"enabled": True, "max_shows": 3}, ""),
    "capping on, demote": ({"enabled": True, "max_shows": 3, "action": "demote"}, ""),
    "page_view_id (capping off)": ({}, "&page_view_id=pv-{n}"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--history", type=int, default=40, help="lists per user before timing")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(calibration_line())
    tmp = Path(tempfile.mkdtemp())
    bundle = ModelBundle.train(
        Interactions.from_events(checkerboard_events(400), EventSettings().weights),
        create("itemknn"),
    )
    store = SQLiteStore(tmp / "s.sqlite")
    _, secret = create_api_key(store, "bench", ["read"])
    headers = {"Authorization": f"Bearer {secret}"}
    users = [f"u{i:03d}" for i in range(args.users)]
    apps = {
        name: create_app(
            Settings(store={"url": f"sqlite:///{tmp / 's.sqlite'}"}, capping=capping),
            bundle=bundle,
            store=store,
        )
        for name, (capping, _) in CONFIGS.items()
    }
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    clients = {name: TestClient(app) for name, app in apps.items()}
    for client in clients.values():
        client.__enter__()
    try:
        warm = clients["capping off (baseline)"]
        for _ in range(args.history):
            for user in users:
                warm.get(f"/v1/users/{user}/recommendations?k=10", headers=headers)
        apps["capping off (baseline)"].state.runtime.decisions.flush()
        n = 0
        for _ in range(args.rounds):
            for name, (_, extra) in CONFIGS.items():
                for user in users:
                    n += 1
                    url = f"/v1/users/{user}/recommendations?k=10{extra.format(n=n)}"
                    started = time.perf_counter()
                    clients[name].get(url, headers=headers)
                    times[name].append((time.perf_counter() - started) * 1e3)
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)
        store.close()
    base = statistics.median(times["capping off (baseline)"])
    print(f"users={args.users} history={args.history} lists each, rounds={args.rounds}")
    print("| configuration | median ms per request | added |")
    print("|---|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        added = "—" if name.startswith("capping off") else f"{med - base:+.2f}"
        print(f"| {name} | {med:.2f} | {added} |")


if __name__ == "__main__":
    main()
