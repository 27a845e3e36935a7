"""Deploy under load: the server swaps models while clients keep asking, and no request fails."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from live_server import live_server

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings, Settings
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events

pytestmark = pytest.mark.slow


def wait_until(condition: Callable[[], bool], within_s: float, what: str) -> None:
    """Poll ``condition`` every 50 ms; fail naming ``what`` if it does not hold in time."""
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within_s} s"
        time.sleep(0.05)


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
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"registry": reg.root, "reload_interval_s": 0.2},
    )
    seen: list[tuple[int, str | None]] = []
    failures: list[str] = []  # every exception a client meets is a failed request
    stop = threading.Event()

    with live_server(settings, tmp_path) as server:

        def client() -> None:
            deadline = time.monotonic() + 30
            try:
                with httpx.Client(headers={"Authorization": f"Bearer {secret}"}, timeout=10) as c:
                    while not stop.is_set() and time.monotonic() < deadline:
                        r = c.get(f"{server.base}/v1/users/u001/recommendations?k=5")
                        seen.append((r.status_code, r.json().get("model_version")))
            except Exception as exc:  # a reset, a timeout, a body that is not JSON: all failures
                failures.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(seen) >= 40 or bool(failures), 20, "40 answers before the swap")
            reg.deploy(versions[1])
            wait_until(
                lambda: any(v == versions[1] for _, v in seen[-20:]) or bool(failures),
                20,
                "the new version served",
            )
            after = len(seen)
            wait_until(lambda: len(seen) >= after + 200 or bool(failures), 20, "200 answers after")
        finally:
            stop.set()
            for t in threads:
                t.join()
    assert failures == [], f"requests failed during the swap: {failures}"
    codes = {code for code, _ in seen}
    served = [v for _, v in seen]
    assert codes == {200}, f"failed requests during the swap: {codes}"
    assert served[0] == versions[0] and served[-1] == versions[1]


def test_admin_reload_reaches_every_process_following_the_registry(
    bundle_dir: Path, tmp_path: Path
) -> None:
    """One POST reaches one worker of one replica; the others (here a second app on the same
    registry) serve the release within a second of the request (README), long before their own
    poll (300 s)."""
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
        requested = time.monotonic()
        answer = one.post("/v1/admin/reload", headers=auth)
        assert answer.status_code == 200 and answer.json()["model_version"] == second
        # poll back to back (each request is the wait): the first answer from the new release
        # must come within a second of the request
        while other.get("/v1/popular", headers=auth).json()["model_version"] != second:
            waited = time.monotonic() - requested
            assert waited <= 1.0, f"the other process still serves {first} after {waited:.2f} s"
        waited = time.monotonic() - requested
        assert waited <= 1.0, f"the other process took {waited:.2f} s to serve {second}"
    store.close()
