"""`recsmith serve --workers 2`: worker processes build the app from settings passed in the
environment, and every one of them answers with the model and the store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_workers_serve_recommendations(bundle_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.sqlite"
    store = SQLiteStore(db)
    _, secret = create_api_key(store, "t", ["read"])
    store.close()
    port = _free_port()
    env = {**os.environ, "RECSMITH_STORE__URL": f"sqlite:///{db}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsmith",
            "-q",
            "serve",
            "--model-dir",
            str(bundle_dir),
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {secret}"}
        answers = [
            httpx.get(f"{base}/v1/users/nobody/recommendations?k=3", headers=headers, timeout=5)
            for _ in range(20)
        ]
        assert all(r.status_code == 200 for r in answers)
        assert {r.json()["fallback"] for r in answers} == {"popular"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
