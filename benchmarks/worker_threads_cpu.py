"""Where a real serving worker's cores go, thread by thread, and what the decision writer costs a
stored list in the server itself (issue #19), two checkouts alternating.

``decision_log_cost.py`` times the writer's step in one process with no other thread; a served
worker differs: its event-loop thread wants the GIL all the time, the other worker's commits
empty the writer connection's page cache (SQLite's WAL), and the file is the shop's. So each
checkout here serves a fresh copy of a built shop (``recsmith serve --workers 2``, response cache
off) under wrk, and around the measured seconds reads every worker thread's CPU (utime + stime of
``/proc/<pid>/task/<tid>/stat``) and context switches (``status``), and the lists the store holds:

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src:benchmarks .venv/bin/python \\
        benchmarks/worker_threads_cpu.py --shop /tmp/shop/large.orig --copy /tmp/shop/me \\
        --against /tmp/base/src --rounds 2 --duration 10

Threads are named by ``py-spy dump`` (Python 3.11 gives its threads no OS name): the writer is
``recsmith-decisions``, the event loop ``MainThread``; the rest are summed as ``other``.
``--log-off`` adds a third side serving this checkout with ``[decisions] enabled = false``: the
loop's CPU a request without the log.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

from calibration import calibration_line
from open_loop import open_loop
from serve_load import closed_loop, start_server, wait_ready

_TICK = os.sysconf("SC_CLK_TCK")
NAMES = {
    "MainThread": "loop",
    "recsmith-decisions": "writer",
    "recsmith-features": "sampler",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workers_of(server: int) -> list[int]:
    """The server's worker processes (its children that run ``spawn_main``)."""
    out = subprocess.run(
        ["pgrep", "-P", str(server), "-f", "spawn_main"], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def roles(pid: int, need: set[str], tries: int = 5) -> dict[str, str]:
    """``loop`` and ``writer`` (and ``sampler``) by native thread id, from ``py-spy dump``'s
    thread lines. A dump that misses one of ``need`` (py-spy fails now and then on a busy
    process) is taken again: unnamed, their CPU would count as ``other`` and the writer's
    a list would come out halved."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    for _ in range(tries):
        out = subprocess.run([spy, "dump", "-p", str(pid)], capture_output=True, text=True).stdout
        found = re.findall(r'^Thread (\d+) \(\w+\): "(.*)"$', out, flags=re.MULTILINE)
        named = {tid: NAMES[name] for tid, name in found if name in NAMES}
        if need <= set(named.values()):
            return named
    raise RuntimeError(f"py-spy dump of worker {pid} did not name its {sorted(need)} threads")


def threads(pid: int, named: dict[str, str]) -> dict[str, tuple[float, float, int]]:
    """Per role of ``pid``'s threads (``named``; every other thread summed as ``other``): CPU
    seconds, of them in the kernel (system time: the writer's WAL writes, syncs and
    checkpoints), and context switches (voluntary and not)."""
    found: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        switches = dict(
            line.split(":\t") for line in status.splitlines() if "ctxt_switches" in line
        )
        row = found[named.get(task.name, "other")]
        row[0] += (int(fields[11]) + int(fields[12])) / _TICK
        row[1] += int(fields[12]) / _TICK
        row[2] += int(switches["voluntary_ctxt_switches"])
        row[2] += int(switches["nonvoluntary_ctxt_switches"])
    return {k: (v[0], v[1], int(v[2])) for k, v in found.items()}


def stored(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])


def one_run(src: Path, args: argparse.Namespace, log_on: bool) -> dict[str, float]:
    """Serve a fresh copy of ``--shop`` from ``src``; the measured window's per-thread figures."""
    shutil.rmtree(args.copy, ignore_errors=True)
    shutil.copytree(args.shop, args.copy, symlinks=True)
    db = args.copy / "store.sqlite"
    env = {
        **os.environ,
        "PYTHONPATH": f"{src}",
        "OPENBLAS_NUM_THREADS": "1",
        "RECSMITH_STORE__URL": f"sqlite:///{db}",
        "RECSMITH_SERVING__CACHE_ENTRIES": "0",
        "RECSMITH_DECISIONS__ENABLED": "true" if log_on else "false",
    }
    port = free_port()
    server = start_server(["--model-dir", str(args.copy / "model")], port, 2, env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        script = args.shop / "load.lua"
        closed_loop(script, base, args.connections, 3)  # warm-up
        if args.rate:
            paths = [
                f"/v1/users/{quote(u, safe='')}/recommendations?k=10"
                for u in args.users.read_text().split()
            ]
            key = (args.shop / "secret").read_text().strip()
        workers = workers_of(server.pid)
        named = [roles(w, {"loop", "writer"} if log_on else {"loop"}) for w in workers]
        lists0 = stored(db)
        before = [threads(w, n) for w, n in zip(workers, named, strict=True)]
        if args.rate:
            figures = open_loop(
                "127.0.0.1", port, paths, key, args.rate, args.connections, args.duration
            ).summary()
        else:
            figures = closed_loop(script, base, args.connections, args.duration)
        after = [threads(w, n) for w, n in zip(workers, named, strict=True)]
        lists1 = stored(db)
    finally:
        server.terminate()
        server.wait(timeout=30)
    cpu: dict[str, float] = defaultdict(float)
    kernel: dict[str, float] = defaultdict(float)
    switches: dict[str, int] = defaultdict(int)
    for b, a in zip(before, after, strict=True):
        for name, (c1, k1, n1) in a.items():
            c0, k0, n0 = b.get(name, (0.0, 0.0, 0))
            cpu[name] += c1 - c0
            kernel[name] += k1 - k0
            switches[name] += n1 - n0
    requests = int(figures["requests"])  # type: ignore[call-overload]
    lists = lists1 - lists0
    worker_cpu = sum(cpu.values())
    return {
        "req_s": float(figures["requests_per_s"]),  # type: ignore[arg-type]
        "p99_ms": float(figures["p99_ms"]),  # type: ignore[arg-type]
        "lists": lists,
        "worker_ms_req": 1000 * worker_cpu / requests,
        "loop_ms_req": 1000 * cpu["loop"] / requests,
        "off_loop_us_req": 1e6 * (worker_cpu - cpu["loop"]) / requests,
        "writer_us_req": 1e6 * cpu["writer"] / requests,
        "sampler_us_req": 1e6 * cpu["sampler"] / requests,
        "other_us_req": 1e6 * cpu["other"] / requests,
        "writer_us_list": 1e6 * cpu["writer"] / lists if lists else float("nan"),
        "writer_share": cpu["writer"] / worker_cpu,
        "writer_kernel": kernel["writer"] / cpu["writer"] if cpu["writer"] else float("nan"),
        "writer_switch_list": switches["writer"] / lists if lists else float("nan"),
        "loop_switch_req": switches["loop"] / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", type=Path, required=True, help="a built shop (never written)")
    parser.add_argument("--copy", type=Path, required=True, help="where each run's copy goes")
    parser.add_argument("--against", type=Path, required=True, help="the other checkout's src")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--log-off", action="store_true", help="also this checkout, log off")
    parser.add_argument(
        "--rate",
        type=float,
        help="open loop at this many requests/s (so both sides store as many lists a flush: the "
        "writer's per-flush costs then weigh the same a list) instead of wrk's closed loop",
    )
    parser.add_argument(
        "--users", type=Path, default=Path("/tmp/shop/large/users.txt"), help="for --rate"
    )
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    this = Path(__file__).resolve().parent.parent / "src"
    sides = [("against", args.against, True), ("this", this, True)]
    if args.log_off:
        sides.append(("this-log-off", this, False))
    head = "round side          req/s   p99ms  lists  worker ms/req  loop ms/req  "
    print(
        head + "writer us/list  (kernel)  writer share  writer switches/list  loop switches/req  "
        "off-loop us/req = writer + sampler + other"
    )
    for r in range(args.rounds):
        for name, src, log_on in sides[:: 1 if r % 2 == 0 else -1]:
            f = one_run(src, args, log_on)
            load = os.getloadavg()[0]
            print(
                f"{r:5} {name:12} {f['req_s']:7.1f} {f['p99_ms']:7.1f} {f['lists']:6} "
                f"{f['worker_ms_req']:13.3f} {f['loop_ms_req']:12.3f} {f['writer_us_list']:15.1f} "
                f"{f['writer_kernel']:9.2f} "
                f"{f['writer_share']:13.3f} {f['writer_switch_list']:21.2f} "
                f"{f['loop_switch_req']:18.2f}  {f['off_loop_us_req']:6.1f} = "
                f"{f['writer_us_req']:.1f} + {f['sampler_us_req']:.1f} + {f['other_us_req']:.1f}"
                f"  load {load:.1f}",
                flush=True,
            )
    shutil.rmtree(args.copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
