"""Acknowledged means durable: SIGKILL a real server mid-stream, every 200'd event is on disk.

A real uvicorn process (started through ``recsmith.serving.run``) serves a SQLite file; threads
stream event batches and record the ids of every batch answered 200; the test kills the server
with SIGKILL while the streams are running, reopens the file, and looks for each acknowledged id.
Two shapes: one stream of 10-event batches, and several streams of single events (what browsers
send), whose requests the server commits in groups (``serving/group_commit.py``): a group's events
are acknowledged only after its commit, so none may be missing either.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsmith.config import Settings
from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.ports import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL"),
]

MAX_BATCHES = 5_000  # bound on each stream; the kill comes long before
KILL_AFTER_EVENTS = 400
STREAM_SECONDS = 30.0
SERVER = (
    "import json, sys\n"
    "from recsmith.config import Settings\n"
    "from recsmith.serving import run\n"
    "run(Settings(**json.loads(open(sys.argv[1]).read())), log_level='warning')\n"
)


def _wait_until_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"server not ready within 60 s:\n{log.read_text()}")


def _stream(
    base: str,
    headers: dict[str, str],
    shape: tuple[str, int],
    acked: list[str],
    errors: list[str],
    stop: threading.Event,
) -> None:
    """Post batches of ``shape[1]`` events until the server dies, ``stop`` is set, or the bounds
    run out; ``shape[0]`` names the stream in the event ids."""
    name, size = shape
    deadline = time.monotonic() + STREAM_SECONDS
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        for n in range(MAX_BATCHES):
            if stop.is_set() or time.monotonic() > deadline:
                return
            batch = [
                {
                    "event_id": f"dur-{name}-{n}-{j}",
                    "user_id": f"u{j}",
                    "item_id": f"i{n % 50}",
                    "event_type": "view",
                    "timestamp": time.time(),
                }
                for j in range(size)
            ]
            try:
                response = http.post("/v1/events", json=batch)
            except httpx.HTTPError:
                return  # the server is gone: what was acknowledged so far is the test's input
            if response.status_code != 200:
                errors.append(f"batch {n}: {response.status_code} {response.text}")
                return
            body: Any = response.json()
            if body["accepted"] != size:
                errors.append(f"batch {n}: {body}")
            acked.extend(event["event_id"] for event in batch)


@pytest.mark.parametrize(
    ("streams", "batch"),
    [(1, 10), (8, 1)],
    ids=["batches-of-10", "single-events-8-streams"],
)
def test_acknowledged_events_survive_sigkill(
    tmp_path: Path, bundle_dir: Path, streams: int, batch: int
) -> None:
    db_path = tmp_path / "durable.sqlite"
    setup = SQLiteStore(db_path)
    _, secret = create_api_key(setup, "durability", ["ingest"])
    setup.close()
    port = free_port()
    settings = Settings(
        store={"url": f"sqlite:///{db_path}"},
        serving={"host": "127.0.0.1", "port": port, "model_dir": bundle_dir},
    )
    config = tmp_path / "settings.json"
    config.write_text(json.dumps(settings.model_dump(mode="json")))
    log = tmp_path / "server.log"
    base = f"http://127.0.0.1:{port}"

    acked: list[str] = []
    errors: list[str] = []
    stop = threading.Event()
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(config)], stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_ready(base, proc, log)
        headers = {"Authorization": f"Bearer {secret}"}
        streamers = [
            threading.Thread(
                target=_stream,
                args=(base, headers, (str(s), batch), acked, errors, stop),
                daemon=True,
            )
            for s in range(streams)
        ]
        for streamer in streamers:
            streamer.start()
        deadline = time.monotonic() + STREAM_SECONDS
        while len(acked) < KILL_AFTER_EVENTS and time.monotonic() < deadline:
            if not all(streamer.is_alive() for streamer in streamers):
                break
            time.sleep(0.01)
        assert all(s.is_alive() for s in streamers), f"a stream ended before the kill: {errors}"
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream: requests are in flight
        proc.wait(timeout=10)
        for streamer in streamers:
            streamer.join(timeout=20)
        assert not any(s.is_alive() for s in streamers), "a stream did not stop after the kill"
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    assert proc.returncode == -signal.SIGKILL
    assert not errors, errors
    assert len(acked) >= KILL_AFTER_EVENTS
    reopened = SQLiteStore(db_path)
    try:
        stored = {eid for frame in reopened.scan() for eid in frame["event_id"]}
    finally:
        reopened.close()
    missing = [eid for eid in acked if eid not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
    if streams > 1:  # the single events did share commits: one received_at per transaction
        with sqlite3.connect(db_path) as conn:
            commits = conn.execute("SELECT COUNT(DISTINCT received_at) FROM events").fetchone()[0]
        assert commits < len(stored), (commits, len(stored))
