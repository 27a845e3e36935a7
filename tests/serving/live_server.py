"""A real ``recsmith.serving.run`` process on a free port, for tests that need real HTTP (uvicorn's
own handling of bodies and connections, an external client such as the schema fuzzer).

Always stopped on exit (terminate, then kill), so a failing test leaves no server behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from recsmith.config import Settings
from recsmith.testing.ports import free_port

SERVER = (
    "import json, sys\n"
    "from recsmith.config import Settings\n"
    "from recsmith.serving import run\n"
    "run(Settings(**json.loads(open(sys.argv[1]).read())), log_level='warning')\n"
)


@dataclass(frozen=True)
class LiveServer:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def live_server(settings: Settings, workdir: Path, ready_s: float = 60.0) -> Iterator[LiveServer]:
    """Serve ``settings`` (its host and port are replaced) until the block ends; ready once
    ``/health/ready`` answers 200."""
    port = free_port()
    data = settings.model_dump(mode="json")
    data["serving"] = {**data["serving"], "host": "127.0.0.1", "port": port}
    config = workdir / "live-settings.json"
    config.write_text(json.dumps(data))
    log = workdir / "live-server.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(config)], stdout=log_file, stderr=subprocess.STDOUT
        )
    server = LiveServer(proc, port, log)
    try:
        wait_ready(server, ready_s)
        yield server
    finally:
        stop(proc)


def wait_ready(server: LiveServer, ready_s: float = 60.0) -> None:
    """Return once ``/health/ready`` answers 200; AssertionError with the server's log when it
    exits or is not ready within ``ready_s``."""
    deadline = time.monotonic() + ready_s
    while True:
        if server.proc.poll() is not None:
            raise AssertionError(
                f"server exited with {server.proc.returncode}:\n{server.log.read_text()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"server not ready in {ready_s} s:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.base}/health/ready", timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` (kill it after 10 s) unless it has exited already."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
