"""A response's head and body in one socket write against uvicorn's two (``serving/one_write.py``):
server CPU per request through a real socket, the two servers driven in turn (BENCHMARKS §74).

Two uvicorn servers, one process each, serve the same small ASGI app (a JSON body of
``--body`` bytes with the recommendation route's headers, one ``http.response.body`` after its
start, as recsmith's routes answer); one with uvicorn's httptools protocol, one with
``OneWriteProtocol``. wrk drives each for ``--seconds`` in turn, the order flipped every round;
the figure is the server process's CPU (``/proc/PID/stat``) per request answered, medians over
the rounds. wrk runs on the same cores, so its own CPU is outside the figure, but what a
second write costs the server (the system call, loopback TCP's receive work done in the
sender's thread) is inside it.

    PYTHONPATH=src .venv/bin/python benchmarks/one_write_socket.py --rounds 10
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from calibration import calibration_line

SERVER = """
import sys, uvicorn
from recsmith.serving.one_write import protocol
body = b'{"items": "' + b"x" * (int(sys.argv[3]) - 13) + b'"}'
head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
        (b"x-request-id", b"0123456789abcdef0123456789abcdef")]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": body})
http = protocol() if sys.argv[2] == "one" else "httptools"
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http=http, access_log=False,
            log_level="warning", lifespan="off")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, timeout: float = 60.0) -> None:
    """Until a server accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"no server on port {port} after {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(port: int, seconds: int, connections: int) -> int:
    """Requests wrk completed against ``port``."""
    out = subprocess.run(
        ["wrk", "-t1", "-c", str(connections), "-d", f"{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"(\d+) requests in", out)
    if found is None or "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk:\n{out}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--body", type=int, default=1400, help="response body bytes")
    args = parser.parse_args()
    print(calibration_line(), flush=True)
    servers = {}
    for name in ("two", "one"):
        port = free_port()
        command = [sys.executable, "-c", SERVER, str(port), name, str(args.body)]
        servers[name] = (port, subprocess.Popen(command))
    try:
        for port, _ in servers.values():
            wait_listening(port)
            drive(port, 1, args.connections)  # warm-up
        spent: dict[str, list[float]] = {name: [] for name in servers}
        rate: dict[str, list[float]] = {name: [] for name in servers}
        for r in range(args.rounds):
            for name in list(servers)[:: 1 if r % 2 == 0 else -1]:
                port, proc = servers[name]
                before = cpu_seconds(proc.pid)
                answered = drive(port, args.seconds, args.connections)
                spent[name].append((cpu_seconds(proc.pid) - before) / answered * 1e6)
                rate[name].append(answered / args.seconds)
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    two, one = (statistics.median(spent[n]) for n in ("two", "one"))
    print(
        f"server CPU us per request, median of {args.rounds} rounds x {args.seconds} s "
        f"({args.connections} connections, {args.body}-byte body): two writes {two:.1f}  "
        f"one write {one:.1f}  difference {two - one:+.1f}  ratio {one / two:.3f}"
    )
    print("  range:", {n: f"{min(v):.1f}-{max(v):.1f}" for n, v in spent.items()})
    print(
        "  requests/s, medians (wrk on the same cores):",
        {n: round(statistics.median(v)) for n, v in rate.items()},
    )


if __name__ == "__main__":
    main()
