"""A real server whose disk fills up: writes are 503s with the cause, the connection stays usable,
readiness fails, and the log has one line for the outage instead of a traceback per request.

The server runs in its own process with ``RLIMIT_FSIZE`` set: the kernel refuses to grow its files
past the limit (Python ignores SIGXFSZ, so the write fails with EFBIG), which SQLite meets exactly
where a full disk would stop it: appending to its write-ahead log.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.ports import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE"),
]

SERVER = (
    "import json, sys\n"
    "from recsmith.config import Settings\n"
    "from recsmith.serving import run\n"
    "run(Settings(**json.loads(open(sys.argv[1]).read())), log_level='warning')\n"
)
#: Room the store's files get to grow past their size at start (each batch adds tens of KB).
HEADROOM = 256 * 1024
MAX_BATCHES = 300


def _batch(n: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"full-{n}-{j}",
            "user_id": f"user-{n}-{j}",
            "item_id": f"i{j}-{'x' * 200}",
            "event_type": "view",
            "timestamp": time.time() - 60,
        }
        for j in range(50)
    ]


def _client_port(response: httpx.Response) -> int:
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_a_full_disk_is_a_503_and_readiness_fails(bundle_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "full.sqlite"
    store = SQLiteStore(db)
    _, secret = create_api_key(store, "disk-full", ["ingest", "read"])
    store.close()
    limit = db.stat().st_size + HEADROOM
    port = free_port()
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{db}"},
                "serving": {"model_dir": str(bundle_dir), "port": port, "max_batch": 50},
            }
        )
    )
    log = tmp_path / "server.log"

    def cap_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(settings)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=cap_file_size,
        )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {secret}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"not ready in 60 s:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            statuses = []
            for n in range(MAX_BATCHES):
                full = http.post("/v1/events", json=_batch(n))
                statuses.append(full.status_code)
                if full.status_code != 200:
                    break
            assert statuses[0] == 200 and statuses[-1] == 503, statuses
            assert full.headers["content-type"] == "application/json"
            assert full.headers["retry-after"] == "5"
            assert full.json()["cause"] in ("disk I/O error", "database or disk is full")
            read = http.get("/v1/users/u1/recommendations")
            assert read.status_code == 200 and read.json()["degraded"] == []
            assert _client_port(read) == _client_port(full)  # the connection survived
            for n in range(5):
                assert http.post("/v1/events", json=_batch(1000 + n)).status_code == 503
            ready = http.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["failed"] == ["store_writes"]
    finally:
        proc.terminate()
        proc.wait(15)
    text = log.read_text()
    assert text.count("unavailable (writes fail") == 1, text
    assert "Traceback" not in text
