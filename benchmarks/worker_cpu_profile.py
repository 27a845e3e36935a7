"""Where a served recommendation request's CPU goes under a fixed-rate open loop, part by part
(issue #19, BENCHMARKS §137).

Serves a fresh copy of a built shop (``recsmith serve --workers 2``, the response cache off, as
``serve_load.py`` serves), warms it with the open loop of ``open_loop.py`` for ``WARM_UP_S``,
then drives ``--duration`` seconds at ``--rate`` requests/s and prints: each worker's thread CPU
per request (``/proc/<pid>/task``: the event loop's thread, user and kernel, and every other
thread together: the decision writer, the feature sampler, the pool), the server's CPU per
request, the collector's collections and CPU per request, and the event loop's CPU split into
the parts of the request (``PARTS``) from a CPU-time sample of its stacks in every worker
(``cpu_sampler/sitecustomize.py``), over the ``--window`` seconds that start 3 s into the
measured run. The collapsed stacks stay under ``--out`` (``<prefix>.<pid>.txt``) for other cuts.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks python benchmarks/worker_cpu_profile.py \\
        /tmp/shop-large --copy /tmp/shop-run --rate 800 --duration 25 --window 20 --out /tmp/prof/a
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from calibration import calibration_line
from open_loop import open_loop
from process_cpu import tree_cpu_s
from serve_load import WARM_UP_S, start_server, wait_ready
from worker_threads_cpu import free_port, workers_of

SAMPLER = Path(__file__).with_name("cpu_sampler")
#: A request's parts, each named by frames of its stack: a sample is the first part whose frame it
#: holds, so a part comes before the parts that call it (``Pipeline.answer`` in the coalescer's
#: flush is the pipeline's; the response write, inside ``Edge``, is uvicorn's); a sample holding
#: none is the server's own loop (uvloop's C, ``Runner.run``).
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("Pipeline.answer", ("Pipeline.answer",)),
    ("stored items read (SQLite)", ("SQLiteStore.users_items", "SQLiteStore.user_items")),
    ("decision record on the loop", ("_record", "record_served")),
    ("response JSON", ("recommendation_response", "recommendation_json")),
    ("listing: answer row to items, reasons, anchor names", ("_listing",)),
    ("metrics", ("Metrics.observe_request", "Metrics.observe_answer", "Metrics.child")),
    ("auth (key check)", ("_read_solved",)),
    (
        "hooks: experiments, placements, live rules, capping, contextual, privacy, shadow",
        (
            "withheld_reason",
            "choose",
            "list_length",
            "placement_bundle",
            "live_view",
            "asked_rules",
            "request_caps",
            "contextual_choice",
            "bandit_for",
            "OnlineState.recent",
            "_profile",
            "ShadowRunner.wants",
        ),
    ),
    (
        "coalescer and gatherer bookkeeping",
        ("Coalescer.answer", "Gatherer.submit", "Gatherer._start", "Gatherer.outcomes"),
    ),
    ("recommend route body (the rest)", ("recommend",)),
    (
        "direct route handler and params",
        ("_solved.<locals>.handler", "StrictJSONRoute.get_route_handler.<locals>.strict"),
    ),
    (
        "uvicorn's response write (the cycle's send, the socket write)",
        ("OneWriteCycle.send", "BalancedCycle.send", "RequestResponseCycle.send"),
    ),
    (
        "ServedApp, Edge (request id, body guard), fast lane, the route's request_response app",
        ("Edge.__call__", "ServedApp.__call__"),
    ),
    (
        "uvicorn/httptools protocol (parse, cycle, task)",
        (
            "HttpToolsProtocol.data_received",
            "RequestResponseCycle.run_asgi",
            "ProxyHeadersMiddleware.__call__",
            "OneWriteProtocol._start_asgi_task",
            "HttpToolsProtocol._start_asgi_task",
            "HttpToolsProtocol.connection_made",
            "HttpToolsProtocol.connection_lost",
        ),
    ),
    (
        "pollers on the loop (live rules, catalogue, drift)",
        ("LiveRules.watch", "CatalogSync.watch", "watch", "to_thread"),
    ),
]
LOOP = "uvloop's own C (socket reads, epoll, callbacks)"


def part_of(frames: list[str]) -> str:
    """The part a sample's stack (frame names, outermost first) counts for (``PARTS``)."""
    held = set(frames)
    for part, names in PARTS:
        if not held.isdisjoint(names):
            return part
    return LOOP if frames and frames[-1] == "Runner.run" else "other"


def parts(files: list[Path]) -> tuple[Counter[str], str]:
    """Samples per part over ``files`` (the sampler's output), and their collector lines."""
    counts: Counter[str] = Counter()
    collector = []
    for path in files:
        for line in path.read_text().splitlines():
            if line.startswith("#"):
                collector.append(f"{path.name}: {line[1:]}")
                continue
            stack, _, n = line.rpartition(" ")
            counts[part_of([frame.split(" (")[0] for frame in stack.split(";")])] += int(n)
    return counts, "\n".join(collector)


def thread_cpu_s(workers: list[int]) -> dict[str, float]:
    """CPU seconds of the workers' event-loop threads (user, kernel) and of their other threads."""
    tick = os.sysconf("SC_CLK_TCK")
    spent = {"loop user": 0.0, "loop kernel": 0.0, "other threads": 0.0}
    for pid in workers:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()
            except OSError:  # a thread that ended meanwhile
                continue
            user, kernel = int(stat[11]) / tick, int(stat[12]) / tick
            if int(tid) == pid:
                spent["loop user"] += user
                spent["loop kernel"] += kernel
            else:
                spent["other threads"] += user + kernel
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shop", type=Path, help="a serve_load.py --workdir (never written)")
    parser.add_argument("--copy", type=Path, required=True, help="where the run's copy goes")
    parser.add_argument("--rate", type=float, required=True, help="requests/s, both workers")
    parser.add_argument("--duration", type=int, default=25)
    parser.add_argument("--window", type=int, default=20, help="seconds sampled (< duration - 3)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--out", type=Path, required=True, help="prefix of the sampled stacks")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    shutil.rmtree(args.copy, ignore_errors=True)
    shutil.copytree(args.shop, args.copy)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start_file = Path(f"{args.out}.start")
    start_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SAMPLER), os.environ.get("PYTHONPATH", "")]),
        "RECSMITH_CPU_SAMPLE": f"{args.out}|{start_file}|{args.window}",
        "RECSMITH_STORE__URL": f"sqlite:///{args.copy / 'store.sqlite'}",
        "RECSMITH_SERVING__CACHE_ENTRIES": "0",
    }
    secret = (args.copy / "secret").read_text()
    users = (args.copy / "users.txt").read_text().split()
    paths = [f"/v1/users/{quote(u, safe='')}/recommendations?k=10" for u in users]
    port = free_port()
    server = start_server(["--model-dir", str(args.copy / "model")], port, 2, env)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        load = ("127.0.0.1", port, paths, secret, args.rate, args.connections)
        open_loop(*load, WARM_UP_S, "c")
        workers = workers_of(server.pid)
        starter = threading.Timer(3, start_file.touch)
        starter.start()
        server_before, threads_before = tree_cpu_s(server.pid), thread_cpu_s(workers)
        result = open_loop(*load, args.duration, "c")
        server_after, threads_after = tree_cpu_s(server.pid), thread_cpu_s(workers)
        starter.join()
        time.sleep(1)  # the samplers write once they run past their window
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(args.copy, ignore_errors=True)
    n = result.requests
    summary = result.summary()
    print({k: summary[k] for k in ("requests_per_s", "errors", "p50_ms", "p90_ms", "p99_ms")})
    if server_before is not None and server_after is not None:
        print(f"server CPU {1000 * (server_after - server_before) / n:.3f} ms a request")
    per = {k: 1000 * (threads_after[k] - threads_before[k]) / n for k in threads_after}
    print("workers' threads, ms a request: " + ", ".join(f"{k} {v:.3f}" for k, v in per.items()))
    files = [Path(f"{args.out}.{pid}.txt") for pid in workers]
    counts, collector = parts([f for f in files if f.exists()])
    print(collector)
    print(f"requests in the window: ~{result.requests / result.duration_s * args.window:.0f}")
    loop = per["loop user"] + per["loop kernel"]
    total = sum(counts.values())
    print(f"event-loop thread by part ({total} samples), ms a request of its {loop:.3f}:")
    for part, k in counts.most_common():
        print(f"  {part}: {100 * k / total:.1f} %  {loop * k / total:.3f}")


if __name__ == "__main__":
    main()
