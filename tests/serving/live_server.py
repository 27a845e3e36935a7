"""A real ``recsmith.serving.run`` process on a free port, for tests that need real HTTP (uvicorn's
own handling of bodies and connections, an external client such as the schema fuzzer).

Always stopped on exit (terminate, then kill), so a failing test leaves no server behind.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from recsmith.config import Settings

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {ready_s} s:\n{log.read_text()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield LiveServer(proc, port, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
