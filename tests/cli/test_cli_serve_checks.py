"""``serve`` refuses to start without a model (unless ``--allow-no-model``), and a taken port is
one line saying what to do. Real ``recsmith serve`` processes, always stopped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.testing.ports import free_port

pytestmark = pytest.mark.slow
START_S = 60


def _serve(tmp_path: Path, *args: str) -> list[str]:
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    return [sys.executable, "-m", "recsmith", "serve", "--store", store, *args]


@contextmanager
def _running(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def model_dir(events_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("m") / "model"
    result = CliRunner().invoke(
        app, ["train", "--data", str(events_csv), "--model", "popular", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("given", ["nothing", "empty_dir"])
def test_serve_without_a_model_refuses_to_start(tmp_path: Path, given: str) -> None:
    args = ["--port", str(free_port())]
    if given == "empty_dir":
        (tmp_path / "model").mkdir()
        args += ["--model-dir", str(tmp_path / "model")]
    # a server that starts anyway never exits: the timeout is the failure
    done = subprocess.run(_serve(tmp_path, *args), capture_output=True, text=True, timeout=START_S)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --model-dir: nothing to serve: ")
    assert "recsmith train" in lines[0] and "--allow-no-model" in lines[0]
    assert not (tmp_path / "s.sqlite").exists()  # a command that refuses creates nothing


def test_a_refused_serve_creates_no_default_store(tmp_path: Path) -> None:
    """Without --store the default store (``recsmith-data/`` under the working directory) is
    not created either: a later ``recommend`` would otherwise find it and log into it."""
    (tmp_path / "model").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSMITH_")}
    # the run starts in tmp_path: a relative PYTHONPATH (``src``) must still find this checkout
    env["PYTHONPATH"] = os.pathsep.join(
        str(Path(part).resolve()) for part in env.get("PYTHONPATH", "").split(os.pathsep) if part
    )
    command = [sys.executable, "-m", "recsmith", "serve", "--model-dir", "model"]
    done = subprocess.run(
        [*command, "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=START_S,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert "nothing to serve" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_allow_no_model_says_so_at_start_and_readiness_explains(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with _running(_serve(tmp_path, "--port", str(port), "--allow-no-model"), log) as proc:
        deadline = time.monotonic() + START_S
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
    assert ready.status_code == 503
    body = ready.json()
    assert body["failed"] == ["model"]
    assert body["hints"]["model"].startswith("no model is loaded")
    assert "recsmith train" in body["hints"]["model"]
    said = " ".join(log.read_text().split())
    assert "warning: serving WITHOUT a model (--allow-no-model)" in said


def test_a_taken_port_is_one_line_saying_what_to_do(model_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            _serve(tmp_path, "--model-dir", str(model_dir), "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=START_S,
        )
    assert done.returncode == 3, done.stderr
    assert not (tmp_path / "s.sqlite").exists()
    assert done.stderr.strip().splitlines() == [
        f"error: serving.port: cannot listen on 127.0.0.1:{port}: the port is already in use, "
        "by another server (another `recsmith serve`?): stop it, or pick a free port with --port"
    ]
