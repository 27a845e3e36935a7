"""What the open-loop generator itself costs: its CPU per request, C against Python, and the
server's, driving the plain-FastAPI baseline (``plain_fastapi.py``) at fixed rates.

The generator runs on the server's machine (``serve_load.py --rate``), so every CPU ms it spends
is one the server lacks on a 2-core box; issue #19's open-loop goal is measured that way. Rounds
alternate the generators (which goes first alternates too), so a neighbour's load hits both; the
report gives each generator's median and range over the rounds, per rate.

    .venv/bin/python benchmarks/generator_cpu.py --rates 1000 2500 --rounds 4 --duration 10
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from urllib.parse import quote

from calibration import calibration, calibration_line
from open_loop import open_loop
from process_cpu import tree_cpu_s
from serve_load import start_plain, wait_ready

from recsmith.testing.ports import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 2500.0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=Path, help="user ids, one a line (default: 50,000 made up)")
    args = parser.parse_args()
    print(calibration_line(calibration()), flush=True)
    users = args.users.read_text().split() if args.users else [f"u{i}" for i in range(50_000)]
    paths = [f"/v1/users/{quote(u, safe='')}/recommendations?k=10" for u in users]
    port = free_port()
    server = start_plain(port, args.workers)
    runs: dict[tuple[float, str], list[dict[str, object]]] = {}
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        for round_ in range(args.rounds):
            order = ("c", "python") if round_ % 2 == 0 else ("python", "c")
            for rate in args.rates:
                for generator in order:
                    load = ("127.0.0.1", port, paths, "-", rate, args.connections)
                    open_loop(*load, 2, generator)  # warm-up
                    before = tree_cpu_s(server.pid)
                    figures = open_loop(*load, args.duration, generator).summary()
                    after = tree_cpu_s(server.pid)
                    if before is not None and after is not None:
                        figures["server_cpu_ms_per_request"] = round(
                            1000 * (after - before) / int(figures["requests"]),  # type: ignore[call-overload]
                            4,
                        )
                    print(json.dumps({"round": round_, "rate": rate, **figures}), flush=True)
                    runs.setdefault((rate, generator), []).append(figures)
    finally:
        server.terminate()
        server.wait(timeout=30)
    keys = ("generator_cpu_ms_per_request", "server_cpu_ms_per_request", "requests_per_s")
    keys += ("p50_ms", "p99_ms", "errors")
    for (rate, generator), done in sorted(runs.items()):
        line = {"rate": rate, "generator": generator, "rounds": len(done)}
        for key in keys:
            values = sorted(float(f[key]) for f in done)  # type: ignore[arg-type]
            line[key] = f"{statistics.median(values):g} [{values[0]:g}-{values[-1]:g}]"
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
