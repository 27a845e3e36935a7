"""A private ``redis-server`` on a free port, for tests that must own (or kill) their Redis.

Sharing the test server (``RECSMITH_TEST_REDIS_URL``) means sharing its keys with every other
test; a test that kills Redis, or whose processes must see only their own state, starts one of
these instead. Skips where ``redis-server`` is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recsmith.testing.ports import free_port


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    """A private redis-server on ``port`` (no persistence), answering when this returns."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(
        [binary, *args, "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis(port=port, socket_connect_timeout=1).ping()
            return proc
        except redis.RedisError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(f"private redis-server on {port} never answered") from exc
            time.sleep(0.05)


@contextmanager
def private_redis(folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """(URL, process) of a private redis-server, killed when the block ends."""
    port = free_port()
    proc = start_redis(port, folder)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.kill()
        proc.wait()
