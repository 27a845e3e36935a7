"""Deploy under load: the server swaps models while clients keep asking, and no request fails."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_deploy_swaps_the_model_without_failing_a_request(tmp_path: Path) -> None:
    data = Interactions.from_events(checkerboard_events(), EventSettings().weights)
    reg = ModelRegistry(tmp_path / "registry")
    versions = []
    for name in ("popular", "itemknn"):
        ModelBundle.train(data, create(name)).save(tmp_path / name)
        versions.append(reg.publish(tmp_path / name))
    reg.deploy(versions[0])
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, secret = create_api_key(store, "t", ["read"])
    store.close()
    port = _port()
    env = {
        **os.environ,
        "RECSMITH_STORE__URL": f"sqlite:///{tmp_path / 's.sqlite'}",
        "RECSMITH_SERVING__RELOAD_INTERVAL_S": "0.2",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsmith",
            "-q",
            "serve",
            "--registry",
            str(reg.root),
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=10) as c:
            deadline = time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < deadline:
                r = c.get(f"{base}/v1/users/u001/recommendations?k=5")
                seen.append((r.status_code, r.json().get("model_version")))

    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        reg.deploy(versions[1])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(v == versions[1] for _, v in seen[-20:]):
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)
    codes = {code for code, _ in seen}
    served = [v for _, v in seen]
    assert codes == {200}, f"failed requests during the swap: {codes}"
    assert served[0] == versions[0] and served[-1] == versions[1]
    assert len(seen) > 50


def test_admin_reload_reaches_every_process_following_the_registry(
    bundle_dir: Path, tmp_path: Path
) -> None:
    """One POST reaches one worker of one replica; the others (here a second app on the same
    registry) load the release within a second, long before their own poll."""
    reg = ModelRegistry(tmp_path / "registry")
    first = reg.publish(bundle_dir)
    second_dir = tmp_path / "v2"
    shutil.copytree(bundle_dir, second_dir)
    manifest = json.loads((second_dir / "manifest.json").read_text())
    (second_dir / "manifest.json").write_text(json.dumps({**manifest, "version": "v2"}))
    second = reg.publish(second_dir)
    reg.deploy(first)
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, secret = create_api_key(store, "t", ["admin", "read"])
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"registry": reg.root, "reload_interval_s": 300},
    )
    auth = {"Authorization": f"Bearer {secret}"}
    with (
        TestClient(create_app(settings, store=store)) as one,
        TestClient(create_app(settings, store=store)) as other,
    ):
        served = [c.get("/v1/popular", headers=auth).json()["model_version"] for c in (one, other)]
        assert served == [first, first]
        reg.deploy(second)
        answer = one.post("/v1/admin/reload", headers=auth)
        assert answer.status_code == 200 and answer.json()["model_version"] == second
        deadline = time.monotonic() + 5
        while other.get("/v1/popular", headers=auth).json()["model_version"] != second:
            assert time.monotonic() < deadline, "the other process never reloaded"
            time.sleep(0.1)
    store.close()
