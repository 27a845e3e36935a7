"""How long a cold server (nothing in its compiled-tree cache) takes to become ready, and to
score with the compiled ranker.

Starts ``recsmith serve`` of a pipeline (``serve_load.py --workdir DIR`` builds one in
``DIR/model``, its store in ``DIR/store.sqlite``) with an empty ``RECSMITH_CACHE_DIR``, and polls
``/health/ready`` every 50 ms: ``ready_s`` is the first 200, ``compiled_s`` the first ready answer
without ``ranker_compiling`` (a checkout that compiles at load has them equal). ``--against SRC``
serves another checkout's ``src`` too, alternating, so a before/after comparison shares the
machine's state.

    .venv/bin/python benchmarks/cold_ready.py /tmp/large --workers 2 --against ../main/src
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import httpx
from calibration import calibration, calibration_line
from serve_load import start_server

from recsmith.testing.ports import free_port


def cold_start(root: Path, workers: int, src: str | None) -> dict[str, float]:
    """Seconds from starting the server to its first ready answer, and to one without
    ``ranker_compiling``."""
    with tempfile.TemporaryDirectory() as cache:
        env = {
            **os.environ,
            "RECSMITH_STORE__URL": f"sqlite:///{root / 'store.sqlite'}",
            "RECSMITH_CACHE_DIR": cache,
        }
        if src is not None:
            env["PYTHONPATH"] = src
        port = free_port()
        started = time.perf_counter()
        server = start_server(["--model-dir", str(root / "model")], port, workers, env)
        figures: dict[str, float] = {}
        try:
            while "compiled_s" not in figures and time.perf_counter() - started < 600:
                try:
                    answer = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1)
                except httpx.HTTPError:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    now = time.perf_counter() - started
                    figures.setdefault("ready_s", round(now, 2))
                    if "ranker_compiling" not in answer.text:
                        figures["compiled_s"] = round(now, 2)
                time.sleep(0.05)
        finally:
            server.terminate()
            server.wait(timeout=30)
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--against", help="another checkout's src, measured alternately")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(calibration_line(calibration()), flush=True)
    sides = {"this": None, **({"against": args.against} if args.against else {})}
    for k in range(args.rounds):
        for name, src in sides.items():
            print(
                f"round {k + 1} {name}: {cold_start(args.workdir, args.workers, src)}", flush=True
            )


if __name__ == "__main__":
    main()
