"""What a kill -9 costs the decision log, measured on a real server: only the lists of its last
flush interval. Acknowledged events are covered by ``test_api_durability``.

A client asks for lists back to back and notes when each answer arrived; the server is killed with
SIGKILL mid-stream; the store is reopened. Every list answered earlier than one flush interval
plus a commit's margin before the kill must be stored; the ones lost are printed with their ages
(BENCHMARKS.md quotes a run).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from live_server import live_server

from recsmith.config import Settings
from recsmith.serving import create_api_key
from recsmith.store.sqlite import SQLiteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

FLUSH_S = 0.5
#: A flush interval's decisions plus the commit in progress at the kill (fsync on a busy disk).
MARGIN_S = 0.5
STREAM_S = 3.0


def test_a_kill_loses_at_most_the_last_flush_interval_of_decisions(
    tmp_path: Path, bundle_dir: Path
) -> None:
    db_path = tmp_path / "kill.sqlite"
    setup = SQLiteStore(db_path)
    _, secret = create_api_key(setup, "kill", ["read"])
    setup.close()
    settings = Settings(
        store={"url": f"sqlite:///{db_path}"},
        serving={"model_dir": bundle_dir, "cache_entries": 0},
        decisions={"flush_interval_s": FLUSH_S},
    )
    answered: list[tuple[str, float]] = []
    with live_server(settings, tmp_path) as server:
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=10) as client:
            end = time.monotonic() + STREAM_S
            n = 0
            while time.monotonic() < end:
                body = client.get(f"/v1/users/u{n % 40}/recommendations?k=5").json()
                answered.append((body["recommendation_id"], time.monotonic()))
                n += 1
        os.kill(server.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        server.proc.wait(timeout=10)
    assert server.proc.returncode == -signal.SIGKILL
    store = SQLiteStore(db_path)
    try:
        stored = set(store.scan_decisions()["recommendation_id"])
    finally:
        store.close()
    lost = [(rid, killed - at) for rid, at in answered if rid not in stored]
    oldest_lost = max((age for _, age in lost), default=0.0)
    print(
        f"\nkill -9: {len(answered)} lists answered in {STREAM_S} s, {len(lost)} lost, "
        f"the oldest {oldest_lost:.3f} s before the kill (flush interval {FLUSH_S} s)"
    )
    assert len(stored) > 0
    assert oldest_lost <= FLUSH_S + MARGIN_S, lost[:5]
    assert stored <= {rid for rid, _ in answered}  # nothing invented
