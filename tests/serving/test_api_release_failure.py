"""A release that does not load never replaces a working one: the old release keeps serving,
readiness and ``POST /v1/admin/reload`` say why, the log says it once, and a fresh server falls
back to the newest earlier release that loads instead of exiting.

The broken release is what a failed save used to leave (``manifest.json`` without ``ids/``),
put into the registry directly, as a registry written by an older recsmith, or a disk that lost
a file since, would hold it (``deploy`` itself now refuses such a directory).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from recsmith.config import Settings
from recsmith.governance.releases import ModelRegistry
from recsmith.serving import create_api_key, create_app
from recsmith.store.sqlite import SQLiteStore


def _copy(bundle_dir: Path, where: Path, version: str, *, broken: bool = False) -> Path:
    shutil.copytree(bundle_dir, where)
    manifest = json.loads((where / "manifest.json").read_text())
    (where / "manifest.json").write_text(json.dumps({**manifest, "version": version}))
    if broken:
        shutil.rmtree(where / "ids")
    return where


@pytest.fixture
def registry(bundle_dir: Path, tmp_path: Path) -> ModelRegistry:
    """v1 (good) deployed, then v2 (broken) deployed over it; v3 (good) published only."""
    reg = ModelRegistry(tmp_path / "registry")
    for version, broken in (("v1", False), ("v2", True), ("v3", False)):
        reg.publish(_copy(bundle_dir, tmp_path / version, version, broken=broken))
    reg.deploy("v1")
    return reg


@pytest.fixture
def keyed_store(tmp_path: Path) -> tuple[SQLiteStore, dict[str, str]]:
    store = SQLiteStore(tmp_path / "s.sqlite")
    _, secret = create_api_key(store, "t", ["admin", "read"])
    return store, {"Authorization": f"Bearer {secret}"}


def _settings(reg: ModelRegistry, tmp_path: Path, interval_s: float = 300) -> Settings:
    return Settings(
        store={"url": f"sqlite:///{tmp_path / 's.sqlite'}"},
        serving={"registry": reg.root, "reload_interval_s": interval_s},
    )


def _failures(caplog: pytest.LogCaptureFixture, version: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "recsmith.serving.reloader" and f"release {version} not loaded" in r.message
    ]


def test_a_broken_deploy_keeps_the_old_release_serving_and_says_why(
    registry: ModelRegistry,
    keyed_store: tuple[SQLiteStore, dict[str, str]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, auth = keyed_store
    caplog.set_level(logging.INFO, logger="recsmith.serving.reloader")
    with TestClient(create_app(_settings(registry, tmp_path, 0.05), store=store)) as client:
        assert client.get("/v1/popular", headers=auth).json()["model_version"] == "v1"
        registry.deploy("v2")
        time.sleep(1.0)  # ~20 polls of the broken pointer
        answer = client.post("/v1/admin/reload", headers=auth)
        assert answer.status_code == 409, answer.text
        detail = answer.json()["detail"]
        assert "v2" in detail and "still serving v1" in detail and "ids is missing" in detail
        assert client.get("/v1/popular", headers=auth).json()["model_version"] == "v1"
        ready = client.get("/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded" and "release" in body["degraded"]
        assert body["release"]["serving"] == "v1" and body["release"]["wanted"] == "v2"
        assert "ids is missing" in body["release"]["error"]
        assert len(_failures(caplog, "v2")) == 1  # once for the bad version, not once per poll

        registry.deploy("v3")
        answer = client.post("/v1/admin/reload", headers=auth)
        assert answer.status_code == 200 and answer.json()["model_version"] == "v3"
        body = client.get("/health/ready").json()
        assert body["status"] == "ok" and "release" not in body["degraded"]
        assert body["release"] == {"serving": "v3", "wanted": "v3", "error": None}
    store.close()


def test_a_failed_release_is_retried_on_request_not_on_every_poll(
    registry: ModelRegistry,
    keyed_store: tuple[SQLiteStore, dict[str, str]],
    bundle_dir: Path,
    tmp_path: Path,
) -> None:
    store, auth = keyed_store
    with TestClient(create_app(_settings(registry, tmp_path, 0.05), store=store)) as client:
        registry.deploy("v2")
        assert client.post("/v1/admin/reload", headers=auth).status_code == 409
        shutil.copytree(bundle_dir / "ids", registry.path("v2") / "ids")  # an operator repairs it
        time.sleep(0.5)  # ~10 polls: none loads it again
        assert client.get("/v1/popular", headers=auth).json()["model_version"] == "v1"
        answer = client.post("/v1/admin/reload", headers=auth)
        assert answer.status_code == 200 and answer.json()["model_version"] == "v2"
        assert client.get("/health/ready").json()["release"]["error"] is None
    store.close()


def test_a_fresh_server_serves_the_newest_earlier_release_that_loads(
    registry: ModelRegistry,
    keyed_store: tuple[SQLiteStore, dict[str, str]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, auth = keyed_store
    registry.deploy("v3")
    registry.deploy("v2")  # history: v3, v1
    caplog.set_level(logging.INFO, logger="recsmith.serving.reloader")
    with TestClient(create_app(_settings(registry, tmp_path), store=store)) as client:
        assert client.get("/v1/popular", headers=auth).json()["model_version"] == "v3"
        body = client.get("/health/ready").json()
        assert body["release"]["serving"] == "v3" and body["release"]["wanted"] == "v2"
        assert "ids is missing" in body["release"]["error"]
    assert any("serving v3, the newest earlier release" in r.getMessage() for r in caplog.records)
    store.close()


def test_a_fresh_server_with_no_release_that_loads_still_starts_and_says_why(
    registry: ModelRegistry, keyed_store: tuple[SQLiteStore, dict[str, str]], tmp_path: Path
) -> None:
    """Nothing to answer with, but events are still taken in: unready (503), with the reason."""
    store, auth = keyed_store
    fresh = ModelRegistry(tmp_path / "fresh")
    fresh.publish(registry.path("v2"))
    fresh.deploy("v2")
    with TestClient(create_app(_settings(fresh, tmp_path), store=store)) as client:
        event = {"user_id": "u1", "item_id": "i1", "event_type": "view", "timestamp": time.time()}
        assert client.post("/v1/events", json=[event], headers=auth).status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["failed"] == ["model"]
        assert ready.json()["release"]["serving"] is None
        assert "ids is missing" in ready.json()["release"]["error"]
    store.close()


SERVE = (sys.executable, "-m", "recsmith", "serve")


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_registry_whose_current_release_is_broken_starts_on_the_earlier_one(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    """What issue 11 saw: ``serve --registry`` exited 3 here."""
    registry.deploy("v2")
    port, url = _port(), f"sqlite:///{tmp_path / 'serve.sqlite'}"
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*SERVE, "--registry", str(registry.root), "--port", str(port), "--store", url],
            env={**os.environ, "RECSMITH_SERVING__REQUIRE_KEYS": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        body = None
        while body is None:
            assert proc.poll() is None, f"server exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).json()
            except httpx.HTTPError:
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert body["model_version"] == "v1"
    assert body["release"]["wanted"] == "v2" and "ids is missing" in body["release"]["error"]
    text = log.read_text()
    assert text.count("release v2 not loaded") == 1 and "serving v1, the newest earlier" in text
