"""Load test of `recsmith serve`: p50/p90/p99 latency and errors under concurrent clients.

Builds an ml-1m-sized shop with the simulator (6,040 users × 3,706 items, ~1M events), stores it
in SQLite, trains a model, starts `recsmith serve` and drives GET recommendations with wrk
(Debian package `wrk`) from the same machine. Users are drawn at random, a tenth of them unknown
(popularity fallback). Every request also runs the store query for the user's current items.
``--rate`` replaces wrk's closed loop with an open-loop schedule (``open_loop.py``; ``--generator``
picks its compiled C or its asyncio generator, ``--baseline-share`` sets the rate to a share of
the plain baseline's closed loop measured first in the same run); ``--workdir``
keeps the built shop and model so later runs serve them again without rebuilding (each such run
first deletes the decisions earlier runs logged there: ``clear_decisions``). The run starts
with the calibration line (``calibration.py``) and ends by driving the same load at a plain FastAPI
endpoint (``plain_fastapi.py``, same workers), so recsmith's figures also come as ratios to a
baseline measured on the same machine in the same run. Each measured run also reports the
server's CPU ms per request (``process_cpu.py``): what a request costs, less swayed by other jobs
than req/s, and how many requests each pipeline call answered (``batch_sizes``: every worker's
``recsmith_coalesced_batch_size`` histogram after the run, warm-up included).

    .venv/bin/python benchmarks/serve_load.py --model ials --connections 20 --duration 30
    .venv/bin/python benchmarks/serve_load.py --pipeline benchmarks/pipeline_large.toml \
        --users 50000 --items 100000 --events-per-user 40 --connections 32 --workers 2 \
        --workdir /tmp/large                     # closed loop: the most it serves
    .venv/bin/python benchmarks/serve_load.py --pipeline benchmarks/pipeline_large.toml \
        --connections 32 --workers 2 --workdir /tmp/large --rate 500   # latency at 500 req/s
    .venv/bin/python benchmarks/serve_load.py --pipeline benchmarks/pipeline_large.toml \
        --connections 32 --workers 2 --workdir /tmp/large --baseline-share 0.4  # issue #19's goal
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
from calibration import calibration, calibration_line
from open_loop import open_loop
from process_cpu import tree_cpu_s

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.events.validate import validate_items
from recsmith.features.interactions import Interactions
from recsmith.governance.keys import create_api_key
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.monitoring.gauges import FIRST_REFRESH_S
from recsmith.pipeline.artifact import save_pipeline, train_pipeline
from recsmith.pipeline.config import load_pipeline_config
from recsmith.simulate import simulate
from recsmith.store.ingest import ingest_events
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.ports import free_port

#: Seconds of load before the measured run: past each worker's first drift refresh, which reads
#: the whole decision window ``FIRST_REFRESH_S`` after the worker starts (about a second of CPU
#: for the ~20,000 lists a warm-up logs; BENCHMARKS §131) and then only every ``refresh_s``
#: (300 s). After a 3 s warm-up that one-off read fell inside the measured 10 s in some runs and
#: not in others (§131: the best candidate for §129's p99 spread); a steady server pays it once in
#: 300 s.
WARM_UP_S = int(FIRST_REFRESH_S) + 3

LUA = """
math.randomseed(42)
local users = {}
for line in io.lines("%(users)s") do users[#users + 1] = line end
request = function()
  local u = users[math.random(#users)]
  return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10",
                    {["Authorization"] = "Bearer %(key)s"})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, summary.duration))
end
"""


def build(
    root: Path,
    model: str,
    n_users: int,
    n_items: int,
    events_per_user: float,
    pipeline: Path | None,
) -> tuple[Path, Path, str, Path]:
    started = time.perf_counter()
    sim = simulate(
        n_users=n_users,
        n_items=n_items,
        n_categories=max(18, n_items // 200),
        sessions_per_user=events_per_user / 6.6,
        events_per_session=6.6,
        days=120,
        seed=1,
    )
    print(f"simulated {len(sim.events):,} events in {time.perf_counter() - started:.1f}s")
    store_path = root / "store.sqlite"
    store = SQLiteStore(store_path)
    started = time.perf_counter()
    accepted = 0
    for start in range(0, len(sim.events), 200_000):
        accepted += ingest_events(
            store, sim.events.iloc[start : start + 200_000], EventSettings(), source="bench"
        ).accepted
    print(f"stored {accepted:,} events in {time.perf_counter() - started:.1f}s")
    frame = next(store.scan(batch_size=10_000_000))
    data = Interactions.from_events(frame, EventSettings().weights)
    started = time.perf_counter()
    model_dir = root / "model"
    if pipeline is None:
        ModelBundle.train(data, create(model)).save(model_dir)
    else:
        items, _ = validate_items(sim.items)
        trained = train_pipeline(
            load_pipeline_config(pipeline), frame, dict(EventSettings().weights), items=items
        )
        save_pipeline(trained, model_dir)
        model = f"pipeline {pipeline} (ranker: {trained.ranker is not None})"
    print(
        f"trained {model} on {data.matrix.nnz:,} interactions in "
        f"{time.perf_counter() - started:.1f}s"
    )
    _, secret = create_api_key(store, "bench", ["read"])
    store.close()
    users = root / "users.txt"
    ids = list(data.users.external_ids)
    rng = np.random.default_rng(0)
    unknown = [f"new-{i}" for i in range(len(ids) // 9)]
    users.write_text("\n".join(rng.permutation(ids + unknown)) + "\n")
    return store_path, model_dir, secret, users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ials")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--users", type=int, default=6040, help="default: ml-1m's 6,040")
    parser.add_argument("--items", type=int, default=3706, help="default: ml-1m's 3,706")
    parser.add_argument("--events-per-user", type=float, default=165.0)
    parser.add_argument("--pipeline", type=Path, help="serve this pipeline TOML, not --model")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--rate",
        type=float,
        help="open loop: send this many requests/s on a fixed schedule (latency counted from the "
        "scheduled time, as wrk2 does) instead of wrk's closed loop",
    )
    parser.add_argument(
        "--baseline-share",
        type=float,
        help="open loop at this share of the plain baseline's closed-loop rate, measured first in "
        "this run (issue #19's goal: 0.4); replaces --rate",
    )
    parser.add_argument(
        "--generator",
        choices=("c", "python"),
        default="c",
        help="the open loop's generator: open_loop.c (compiled at first use; Python when no "
        "compiler works) or asyncio; both run on this machine and take CPU from the server",
    )
    parser.add_argument(
        "--swap",
        action="store_true",
        help="serve from a model registry and deploy a second release half-way through the run",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="build the shop and model here and keep them; a later run with the same directory "
        "serves them again without rebuilding",
    )
    parser.add_argument(
        "--compare-decisions",
        action="store_true",
        help="serve the closed loop four times, decision log off/on/off/on (interleaved, so a "
        "shared machine's drift hits both), and report each setting's best run and the ratios",
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="keep the server's response cache on (off by default: every request is computed)",
    )
    args = parser.parse_args()
    machine = calibration()
    print(calibration_line(machine), flush=True)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    if args.workdir is not None and (args.workdir / "secret").exists():
        root = args.workdir  # built by an earlier run: serve it again
        store_path, model_dir, users = root / "store.sqlite", root / "model", root / "users.txt"
        secret = (root / "secret").read_text()
        print(f"cleared {clear_decisions(store_path):,} decisions of earlier runs", flush=True)
    else:
        root = args.workdir or Path(tempfile.mkdtemp(prefix="recsmith-load-"))
        root.mkdir(parents=True, exist_ok=True)
        store_path, model_dir, secret, users = build(
            root, args.model, args.users, args.items, args.events_per_user, args.pipeline
        )
        (root / "secret").write_text(secret)
        (root / "shop.json").write_text(json.dumps({"users": args.users, "items": args.items}))
    closed_baseline: dict[str, object] | None = None
    if args.baseline_share:
        closed_baseline = plain_baseline(
            argparse.Namespace(**{**vars(args), "rate": None}), root, users, secret
        )
        args.rate = round(args.baseline_share * float(closed_baseline["requests_per_s"]), 1)  # type: ignore[arg-type]
        print(
            f"baseline closed loop {closed_baseline}: open loop at {args.rate:g} req/s", flush=True
        )
    port = free_port()
    env = {**os.environ, "RECSMITH_STORE__URL": f"sqlite:///{store_path}"}
    if not args.cache:  # measure the pipeline, not the ~14 % of random users asked twice
        env["RECSMITH_SERVING__CACHE_ENTRIES"] = "0"
    serves = ["--model-dir", str(model_dir)]
    if args.compare_decisions:
        compare_decisions(args, env, serves, root, users, secret, machine)
        return
    swap: threading.Timer | None = None
    if args.swap:
        registry, second = two_releases(root, model_dir)
        serves = ["--registry", str(registry.root)]
        env["RECSMITH_SERVING__RELOAD_INTERVAL_S"] = "1"
        # half-way through the measured run (after the warm-up)
        swap = threading.Timer(WARM_UP_S + args.duration / 2, registry.deploy, (second,))
    server = start_server(serves, port, args.workers, env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        if swap is not None:
            swap.start()
        figures = drive(args, root, users, secret, port, server.pid)
        figures["batch_sizes"] = batch_sizes(base, args.workers)
        if args.swap:
            after = httpx.get(
                f"{base}/v1/users/nobody/recommendations",
                headers={"Authorization": f"Bearer {secret}"},
            ).json()["model_version"]
            figures["swapped_to"] = after if after == second else f"NOT SWAPPED (still {after})"
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures["baseline"] = plain_baseline(args, root, users, secret)
    if closed_baseline is not None:
        figures["baseline_closed_loop"] = closed_baseline
    figures["ratio_to_baseline"] = ratios(figures, figures["baseline"])
    figures["calibration"] = machine
    report(args, figures)
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


def clear_decisions(store_path: Path) -> int:
    """Delete the decisions earlier runs left in a reused workdir's store, so that every run
    starts from the same log. A fresh server reads the log's last hour whole at start (the
    fairness watch's first refresh, ``fairness.watch``), inside the measured seconds: after eight
    runs (51,182 lists, 511,820 shown rows) that read took 39 % of a worker's samples over a 10 s
    run (BENCHMARKS.md §38), so each run was charged for all the runs before it."""
    store = SQLiteStore(store_path)
    try:
        return store.delete_decisions_before(datetime.now(UTC) + timedelta(days=1))
    finally:
        store.close()


def compare_decisions(
    args: argparse.Namespace,
    env: dict[str, str],
    serves: list[str],
    root: Path,
    users: Path,
    secret: str,
    machine: dict[str, object],
) -> None:
    """The serving cost of the decision log: the same load (``--rate``'s open loop, else wrk's
    closed loop) with ``[decisions] enabled`` false and true, twice each, interleaved; each
    setting's run with the lower p99 is kept (the other is the one a neighbour's load disturbed
    more) and the ratios on/off reported."""
    runs: dict[str, list[dict[str, object]]] = {"off": [], "on": []}
    for label in ("off", "on", "off", "on"):
        port = free_port()
        flag = "true" if label == "on" else "false"
        server = start_server(
            serves, port, args.workers, {**env, "RECSMITH_DECISIONS__ENABLED": flag}
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}")
            runs[label].append(drive(args, root, users, secret, port, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=30)
    best = {k: min(v, key=lambda f: float(f["p99_ms"])) for k, v in runs.items()}  # type: ignore[arg-type]
    figures: dict[str, object] = {
        "decisions_off": best["off"],
        "decisions_on": best["on"],
        "all_runs": runs,
        "p99_on_over_off": round(float(best["on"]["p99_ms"]) / float(best["off"]["p99_ms"]), 3),  # type: ignore[arg-type]
        "rps_on_over_off": round(
            float(best["on"]["requests_per_s"]) / float(best["off"]["requests_per_s"]),
            3,  # type: ignore[arg-type]
        ),
        "calibration": machine,
    }
    report(args, figures)
    if args.workdir is None:
        shutil.rmtree(root, ignore_errors=True)


def start_server(
    serves: list[str], port: int, workers: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """``recsmith serve`` of ``serves`` (its model or registry options) on ``port``, quiet."""
    command = [sys.executable, "-m", "recsmith", "-q", "serve", *serves]
    return subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(base: str) -> None:
    """Poll readiness for up to three minutes until ten answers in a row are ready with the
    ranker compiled (it is built in the background; the workers answer in turn), so the run
    measures the compiled path; exit when the server never gets there."""
    settled = 0
    for _ in range(900):
        try:
            answer = httpx.get(f"{base}/health/ready", timeout=1)
            ready = answer.status_code == 200
            settled = settled + 1 if ready and "ranker_compiling" not in answer.text else 0
            if settled == 10:
                return
        except httpx.HTTPError:
            settled = 0
        time.sleep(0.2)
    sys.exit(f"server at {base} did not become ready")


def drive(
    args: argparse.Namespace, root: Path, users: Path, secret: str, port: int, server: int
) -> dict[str, object]:
    """The measured load on ``port``: open loop at ``--rate`` or wrk's closed loop, each after a
    ``WARM_UP_S`` warm-up, with the CPU time the ``server`` process (and its workers) spent per
    request and how its workers shared the connections half-way through (the plain baseline's
    uvicorn workers share one listening socket, and one may accept most of them: then it serves on
    one core)."""
    split: list[int] = []
    sampler = threading.Timer(
        WARM_UP_S + args.duration / 2, lambda: split.extend(worker_split(port))
    )
    sampler.start()
    if not args.rate:
        base = f"http://127.0.0.1:{port}"
        script = root / "load.lua"
        script.write_text(LUA % {"users": users, "key": secret})
        closed_loop(script, base, args.connections, WARM_UP_S)
        before = tree_cpu_s(server)
        figures = closed_loop(script, base, args.connections, args.duration)
    else:
        paths = [
            f"/v1/users/{quote(u, safe='')}/recommendations?k=10" for u in users.read_text().split()
        ]
        load = ("127.0.0.1", port, paths, secret, args.rate, args.connections)
        open_loop(*load, WARM_UP_S, args.generator)
        before = tree_cpu_s(server)
        result = open_loop(*load, args.duration, args.generator)
        figures = {"mode": f"open loop at {args.rate:g} req/s", **result.summary()}
    after = tree_cpu_s(server)
    if before is not None and after is not None and figures.get("requests"):
        figures["server_cpu_ms_per_request"] = round(
            1000 * (after - before) / int(figures["requests"]),  # type: ignore[call-overload]
            3,
        )
    sampler.join()
    figures["connections_per_worker"] = split
    return figures


def batch_sizes(base: str, workers: int) -> dict[str, object]:
    """The pipeline calls' batch sizes summed over the server's workers: each worker keeps its own
    ``/metrics``, and each fresh connection lands on one of them, so ask until ``workers``
    different histograms came back (or 40 tries). ``buckets``: calls of at most that many."""
    seen: dict[tuple[float, ...], dict[str, float]] = {}
    for _ in range(40):
        text = httpx.get(f"{base}/metrics", timeout=5).text
        found = {
            line.split(" ")[0]: float(line.split(" ")[-1])
            for line in text.splitlines()
            if line.startswith("recsmith_coalesced_batch_size")
        }
        seen[tuple(found.values())] = found
        if len(seen) == workers:
            break
    total: Counter[str] = Counter()
    for found in seen.values():
        total.update(found)
    calls = total["recsmith_coalesced_batch_size_count"]
    buckets = {
        re.sub(r'.*le="([^"]+)".*', r"\1", name): int(count)
        for name, count in total.items()
        if "_bucket" in name
    }
    return {
        "workers_read": len(seen),
        "calls": int(calls),
        "mean": round(total["recsmith_coalesced_batch_size_sum"] / calls, 3) if calls else None,
        "buckets": buckets,
    }


def plain_baseline(
    args: argparse.Namespace, root: Path, users: Path, secret: str
) -> dict[str, object]:
    """The same load against ``plain_fastapi.py`` (a fixed 10-item list) under uvicorn with the
    same number of workers, measured in this run so the ratios hold on any machine."""
    port = free_port()
    server = start_plain(port, args.workers)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        return drive(args, root, users, secret, port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)


def start_plain(port: int, workers: int) -> subprocess.Popen[bytes]:
    """``plain_fastapi.py`` under uvicorn with ``workers`` processes on ``port``, quiet."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "plain_fastapi:app",
            "--app-dir",
            str(Path(__file__).parent),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ratios(figures: dict[str, object], baseline: dict[str, object]) -> dict[str, float]:
    """recsmith's throughput and latencies divided by the baseline's (throughput: higher is
    better, at most about 1; latency: lower is better, at least about 1)."""
    keys = ("requests_per_s", "p50_ms", "p90_ms", "p99_ms", "server_cpu_ms_per_request")
    return {
        key: round(float(figures[key]) / float(baseline[key]), 3)  # type: ignore[arg-type]
        for key in keys
        if float(baseline.get(key) or 0) > 0  # type: ignore[arg-type]
    }


def worker_split(port: int) -> list[int]:
    """How the clients' connections are spread over the server's processes right now (by ``ss``;
    empty where it is missing): an uneven split loads one worker more than the other."""
    if shutil.which("ss") is None:
        return []
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    pids = re.findall(r"pid=(\d+)", out)
    return sorted(Counter(pids).values())


def two_releases(root: Path, model_dir: Path) -> tuple[ModelRegistry, str]:
    """A registry serving the trained model, and a second release to deploy mid-run: the same
    trained files under another version name (what is measured is the swap, not the training)."""
    registry = ModelRegistry(root / "registry")
    first = registry.publish(model_dir)
    second_dir = root / "model-b"
    if not second_dir.exists():
        shutil.copytree(model_dir, second_dir)
        manifest = json.loads((second_dir / "manifest.json").read_text())
        manifest["version"] += "-b"
        (second_dir / "manifest.json").write_text(json.dumps(manifest))
    second = registry.publish(second_dir)
    registry.deploy(first)
    return registry, second


def closed_loop(script: Path, base: str, connections: int, duration: int) -> dict[str, object]:
    """wrk at full speed, running ``script``: each connection sends its next request when the
    last one is answered."""
    wrk = ["wrk", "-t2", "-c", str(connections), "-s", str(script)]
    out = subprocess.run(
        [*wrk, "-d", f"{duration}s", "--timeout", "5s", base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if match is None:
        sys.exit(f"could not read wrk output:\n{out}")
    n, errors, bad_status, p50, p90, p99, worst, duration_us = map(int, match.groups())
    return {
        "mode": "closed loop (wrk)",
        "requests": n,
        "requests_per_s": round(n / (duration_us / 1e6), 1),
        "errors": errors + bad_status,
        "p50_ms": p50 / 1000,
        "p90_ms": p90 / 1000,
        "p99_ms": p99 / 1000,
        "max_ms": worst / 1000,
    }


def report(args: argparse.Namespace, figures: dict[str, object]) -> None:
    """Print (and with ``--json`` write) the run's figures with what was served."""
    shop = json.loads((args.workdir / "shop.json").read_text()) if args.workdir else {}
    figures = {
        "model": str(args.pipeline or args.model),
        "users": shop.get("users", args.users),
        "items": shop.get("items", args.items),
        "workers": args.workers,
        "connections": args.connections,
        "response_cache": args.cache,
        **figures,
    }
    print(json.dumps(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
