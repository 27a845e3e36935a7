"""Throughput and p99 of one server vs two replicas on one PostgreSQL and one Redis.

The question: on the same machine, what does a second API server (a replica: its own process and
port, sharing the store, the online state and the registry) add? Builds a simulated shop
(``serve_load.build``: events in SQLite, an iALS model), copies its events into a fresh
PostgreSQL schema, starts a private Redis, and measures, interleaved ``--rounds`` times:

- ``1 server``: one ``recsmith serve`` (one worker process);
- ``2 replicas``: two ``recsmith serve`` processes on two ports (one worker each);
- ``1 server, 2 workers``: the other way to use a second core on one machine.

The load is the same in every configuration: two wrk clients of ``--connections``/2 connections
each (with two replicas each client drives one, as a load balancer would split them), every
connection sending 9 recommendation requests (random users, a tenth of them unknown) for each
event it posts (a unique event id, so every event is stored). Requests/s is the two clients'
sum; p50/p99 are each client's own, and the table shows the worse of the two.

Everything (servers, PostgreSQL, Redis, wrk) shares this machine's cores: where there are fewer
cores than processes that want one, a second replica cannot add throughput, only split it; on
separate machines the replicas would not compete.

    .venv/bin/python benchmarks/replicas_load.py --connections 16 --duration 20 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from calibration import calibration_line
from process_cpu import tree_cpu_s
from serve_load import build, start_server, wait_ready

from recsmith.governance.keys import create_api_key
from recsmith.store.base import EventStore
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.backends import open_backend
from recsmith.testing.ports import free_port
from recsmith.testing.private_redis import private_redis

LUA = """
math.randomseed(%(seed)d)
local users = {}
for line in io.lines("%(users)s") do users[#users + 1] = line end
local n = 0
local auth = "Bearer %(key)s"
request = function()
  n = n + 1
  local u = users[math.random(#users)]
  if n %% 10 == 0 then
    local body = string.format(
      '[{"event_id":"%(tag)s-%%d-%%d","user_id":"%%s","item_id":"i%%d","event_type":"view"}]',
      math.random(1000000000), n, u, math.random(0, 999))
    return wrk.format("POST", "/v1/events",
                      {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10",
                    {["Authorization"] = auth})
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, latency:percentile(50),
    latency:percentile(99), summary.duration))
end
"""

CONFIGS = {"1 server": (1, 1), "2 replicas": (2, 1), "1 server, 2 workers": (1, 2)}


def copy_events(sqlite_path: Path, store: EventStore) -> int:
    """The shop's events from the SQLite store into ``store`` (the PostgreSQL one), as stored."""
    source = SQLiteStore(sqlite_path)
    try:
        return sum(store.append(frame).inserted for frame in source.scan(batch_size=200_000))
    finally:
        source.close()


def wrk(script: Path, base: str, connections: int, duration: int) -> subprocess.Popen[str]:
    command = ["wrk", "-t1", "-c", str(connections), "-s", str(script), "-d", f"{duration}s"]
    return subprocess.Popen([*command, "--timeout", "5s", base], stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str]) -> tuple[int, int, float, float, float]:
    """(requests, errors, p50 ms, p99 ms, seconds) of a finished wrk."""
    out, _ = proc.communicate()
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if match is None:
        sys.exit(f"could not read wrk output:\n{out}")
    n, errors, bad, p50, p99, duration_us = map(int, match.groups())
    return n, errors + bad, p50 / 1000, p99 / 1000, duration_us / 1e6


def run_config(
    name: str, env: dict[str, str], model_dir: Path, scripts: list[Path], args: argparse.Namespace
) -> dict[str, float]:
    servers, workers = CONFIGS[name]
    ports = [free_port() for _ in range(servers)]
    procs = [start_server(["--model-dir", str(model_dir)], p, workers, env) for p in ports]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for base in bases:
            wait_ready(base)
        targets = [bases[i % len(bases)] for i in range(2)]  # client i → server i mod n
        half = args.connections // 2
        for proc in [wrk(s, t, half, 3) for s, t in zip(scripts, targets, strict=True)]:
            result(proc)  # warm-up
        before = sum(tree_cpu_s(p.pid) or 0.0 for p in procs)
        clients = [wrk(s, t, half, args.duration) for s, t in zip(scripts, targets, strict=True)]
        figures = [result(c) for c in clients]
        cpu = sum(tree_cpu_s(p.pid) or 0.0 for p in procs) - before
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    requests = sum(f[0] for f in figures)
    return {
        "req_s": sum(f[0] / f[4] for f in figures),
        "errors": sum(f[1] for f in figures),
        "p50_ms": max(f[2] for f in figures),
        "p99_ms": max(f[3] for f in figures),
        "server_cpu_ms": 1000 * cpu / max(requests, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16, help="split over two clients")
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--users", type=int, default=6040)
    parser.add_argument("--items", type=int, default=3706)
    parser.add_argument("--events-per-user", type=float, default=40.0)
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="recsmith-replicas-"))
    try:
        sqlite_path, model_dir, _, users = build(
            root, "ials", args.users, args.items, args.events_per_user, None
        )
        with open_backend("postgres", root) as (store, url), private_redis(root) as (redis, _):
            started = time.perf_counter()
            copied = copy_events(sqlite_path, store)
            print(
                f"copied {copied:,} events to PostgreSQL in {time.perf_counter() - started:.0f} s"
            )
            _, secret = create_api_key(store, "bench", ["read", "ingest"])
            env = {
                **os.environ,
                "RECSMITH_STORE__URL": url,
                "RECSMITH_SERVING__STATE_URL": redis,
                "RECSMITH_SERVING__CACHE_ENTRIES": "0",  # every list computed, as serve_load
            }
            scripts = []
            for i in range(2):
                script = root / f"client{i}.lua"
                values = {"seed": 42 + i, "users": users, "key": secret, "tag": f"c{i}"}
                script.write_text(LUA % values)
                scripts.append(script)
            rows: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
            for round_ in range(args.rounds):
                for name in CONFIGS:
                    figures = run_config(name, env, model_dir, scripts, args)
                    rows[name].append(figures)
                    print(
                        f"round {round_ + 1} {name:<20} {figures['req_s']:7.0f} req/s  "
                        f"p50 {figures['p50_ms']:6.1f} ms  p99 {figures['p99_ms']:6.1f} ms  "
                        f"errors {figures['errors']:.0f}  server CPU "
                        f"{figures['server_cpu_ms']:.2f} ms/req  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\nbest round per configuration (most req/s):")
    print("| configuration | req/s | p50 ms | p99 ms | server CPU ms/req |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in rows.items():
        best = max(runs, key=lambda f: f["req_s"])
        print(
            f"| {name} | {best['req_s']:.0f} | {best['p50_ms']:.1f} | {best['p99_ms']:.1f} | "
            f"{best['server_cpu_ms']:.2f} |"
        )


if __name__ == "__main__":
    main()
