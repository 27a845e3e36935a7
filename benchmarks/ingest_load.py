"""Load test of event ingestion: acknowledged events/s and latency of `POST /v1/events`.

Starts a real `recsmith serve --workers N` on a fresh SQLite store (no model: ingestion does not
need one) and drives it with wrk (Debian package `wrk`) from the same machine: ``--connections``
keep-alive connections, each posting its next batch as soon as the last one is answered (closed
loop), every event with an id of its own. Acknowledged events/s counts only requests answered 200,
times the batch size; the store is then checked to hold at least that many events, and the number
of distinct ``received_at`` values (one per store transaction) gives the mean events per commit.

The first line is a machine calibration, so figures from different machines (or one machine under
different loads) can be compared: a pure-Python loop, a numpy float32 matmul, the load average,
and the versions that matter.

    .venv/bin/python benchmarks/ingest_load.py --batch 1 --connections 16 --workers 2
    .venv/bin/python benchmarks/ingest_load.py --batch 1000 --connections 16 --workers 2

The server runs whichever recsmith ``PYTHONPATH`` (or the venv) provides, so the same script
measures an older checkout: ``PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/...``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from calibration import calibration_line

from recsmith.governance.keys import create_api_key
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.ports import free_port

#: wrk script: ``[[ ]]`` placeholders are filled in by ``lua_script``. Each wrk thread numbers its
#: requests, so every event id is unique across threads and runs (``prefix``).
LUA = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  thread_id = tonumber(wrk.thread:get("id"))
end
request = function()
  counter = counter + 1
  local parts = {}
  for j = 1, [[batch]] do
    parts[j] = string.format(
      '{"event_id":"[[prefix]]-%d-%d-%d","user_id":"u%d","item_id":"i%d",' ..
      '"event_type":"view","timestamp":[[ts]]}',
      thread_id, counter, j, (counter * 7 + j) % 5000, (counter * 13 + j) % 2000)
  end
  return wrk.format("POST", "/v1/events",
    {["Authorization"] = "Bearer [[key]]", ["Content-Type"] = "application/json"},
    "[" .. table.concat(parts, ",") .. "]")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, summary.duration))
end
"""


def lua_script(batch: int, prefix: str, key: str, ts: float) -> str:
    fields = {"batch": str(batch), "prefix": prefix, "key": key, "ts": f"{ts:.3f}"}
    return re.sub(r"\[\[(\w+)\]\]", lambda m: fields[m.group(1)], LUA)


def wait_until_serving(base: str, server: subprocess.Popen[bytes]) -> None:
    """Ready apart from the model (this benchmark serves none): the store answers."""
    for _ in range(300):
        if server.poll() is not None:
            sys.exit(f"server exited with {server.returncode}")
        try:
            body = httpx.get(f"{base}/health/ready", timeout=1).json()
            if "store" not in body.get("failed", ["store"]):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    sys.exit("server did not become ready")


def wrk(base: str, script: Path, connections: int, seconds: int) -> dict[str, float]:
    cmd = ["wrk", "-t2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    out = subprocess.run([*cmd, "-s", str(script), base], capture_output=True, text=True)
    return wrk_result(out)


def ceiling(base: str, connections: int, seconds: int) -> float:
    """Requests/s of ``GET /health/live`` (no body, no auth, no store): what the HTTP stack alone
    serves on this machine now, the bound on single-event POSTs whatever ingestion costs."""
    cmd = ["wrk", "-t2", "-c", str(connections), "-d", f"{seconds}s", f"{base}/health/live"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if match is None:
        sys.exit(f"could not read wrk output:\n{out.stdout}\n{out.stderr}")
    return float(match.group(1))


def wrk_result(out: subprocess.CompletedProcess[str]) -> dict[str, float]:
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if match is None:
        sys.exit(f"could not read wrk output:\n{out.stdout}\n{out.stderr}")
    requests, errors, status, p50, p90, p99, worst, duration_us = map(int, match.groups())
    return {
        "requests": requests,
        "socket_errors": errors,
        "non_2xx": status,
        "p50_ms": p50 / 1000,
        "p90_ms": p90 / 1000,
        "p99_ms": p99 / 1000,
        "max_ms": worst / 1000,
        "duration_s": duration_us / 1e6,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        proc = Path(f"/proc/{pending.pop()}")
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in (proc / "task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def commits(db: Path, prefix: str) -> tuple[int, int]:
    """Events of a run in the store, and the store transactions that wrote them."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT received_at) FROM events WHERE event_id LIKE ?",
            (f"{prefix}-%",),
        ).fetchone()
    return int(row[0]), int(row[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1, help="events per request")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--duration", type=int, default=20, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds first")
    parser.add_argument(
        "--ceiling", type=int, default=5, help="seconds of GET /health/live after (0: none)"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")

    print(calibration_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="ingest-load-") as tmp:
        root = Path(tmp)
        db = root / "events.sqlite"
        store = SQLiteStore(db)
        _, key = create_api_key(store, "ingest-load", ["ingest"])
        store.close()
        port = free_port()
        env = {**os.environ, "RECSMITH_STORE__URL": f"sqlite:///{db}"}
        serve = ["serve", "--port", str(port), "--workers", str(args.workers)]
        serve.append("--allow-no-model")  # no model: ingestion needs none
        server = subprocess.Popen(
            [sys.executable, "-m", "recsmith", "-q", *serve],
            env=env,
            cwd=root,  # no recsmith.toml from the caller's directory
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, server)
            now = time.time()
            for prefix, seconds in (("warm", args.warmup), ("run", args.duration)):
                script = root / f"{prefix}.lua"
                script.write_text(lua_script(args.batch, prefix, key, now))
                cpu_before = cpu_seconds(server.pid)
                result = wrk(base, script, args.connections, seconds)
                server_cpu = cpu_seconds(server.pid) - cpu_before
            live = ceiling(base, args.connections, args.ceiling) if args.ceiling else None
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored, transactions = commits(db, "run")
    acknowledged = (result["requests"] - result["non_2xx"]) * args.batch
    if stored < acknowledged:
        sys.exit(f"the store holds {stored} events but {acknowledged} were acknowledged")
    report = {
        "batch": args.batch,
        "connections": args.connections,
        "workers": args.workers,
        **result,
        "acknowledged_events_per_s": round(acknowledged / result["duration_s"], 1),
        "events_per_commit": round(stored / max(transactions, 1), 1),
        "server_cpu_ms_per_event": round(server_cpu * 1000 / max(acknowledged, 1), 3),
        "http_ceiling_requests_per_s": live,
    }
    print("result", json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
