"""Every command quickstart suggests names its config, and the suggestions run as printed.

quickstart writes ``recsmith-data/recsmith.toml`` while later commands read ``./recsmith.toml``,
so a suggestion without ``-c`` would serve no model. Here the printed ``serve`` line is run
verbatim (argv from ``shlex.split``) in the directory quickstart ran in, and must serve the
model quickstart saved (its manifest's version is the oracle), to a key made by the printed
``keys create`` line.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.cli.quickstart import command_name
from recsmith.testing.ports import free_port

pytestmark = pytest.mark.slow
CONFIG = "recsmith-data/recsmith.toml"


#: how the printed lines call recsmith from this shell (``recsmith``, or the venv's script)
PROGRAM = shlex.split(command_name())[0]


def _argv(line: str) -> list[str]:
    """A printed ``recsmith …`` line as the shell would split it, run by this interpreter."""
    words = shlex.split(line)
    assert words[0] == PROGRAM
    return [sys.executable, "-m", "recsmith", *words[1:]]


@pytest.mark.timeout(900)  # a whole quickstart (training included): 4-5 min at load 14 (§151)
def test_follow_ups_name_the_config_and_the_serve_line_serves_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()
    result = CliRunner().invoke(app, ["quickstart", "--no-serve", "--port", str(port)])
    assert result.exit_code == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    suggested = [line for line in lines if line.startswith(f"{command_name()} ")]
    curls = [line for line in lines if line.startswith("curl ") and "?k=5" in line]
    # a URL with ``?`` pastes into zsh only quoted ("no matches found" otherwise)
    assert len(curls) == 2 and all("'http://127.0.0.1:" in line for line in curls), curls
    assert {shlex.split(line)[3] for line in suggested} >= {"serve", "import", "evaluate", "train"}
    assert all(shlex.split(line)[1:3] == ["-c", CONFIG] for line in suggested), suggested

    keys = next(line for line in suggested if shlex.split(line)[3] == "keys")
    created = subprocess.run([*_argv(keys), "--json"], capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    secret = json.loads(created.stdout.splitlines()[-1])["secret"]

    serve = next(line for line in suggested if shlex.split(line)[3] == "serve")
    version = json.loads((tmp_path / "recsmith-data/model/manifest.json").read_text())["version"]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(_argv(serve), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2)
                popular = httpx.get(
                    f"http://127.0.0.1:{port}/v1/popular?k=3",
                    headers={"Authorization": f"Bearer {secret}"},
                    timeout=10,
                )
                break
            except httpx.HTTPError:
                time.sleep(0.3)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["model_version"] == version
    # the key the suggested `keys create` made is in the store the suggested `serve` reads
    assert popular.status_code == 200, popular.text
