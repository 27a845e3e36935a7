"""Progress per stage with elapsed time on a terminal; nothing under -q or when stderr is piped.

The commands run as real processes: on a pseudo-terminal (``pty``) for the terminal case, with
stderr piped for the other, since whether rich draws depends on what stderr really is.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

PIPELINE = """
[[retrieval.sources]]
name = "knn"
model = "itemknn"
quota = 40
[ranking]
params = { n_estimators = 10 }
"""
STAGES = (
    "reading events",
    "interaction matrix",
    "ranker on its label windows",
    "sources on all events",
    "feature state",
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(args: list[str], timeout: float = 120.0) -> str:
    """stderr of ``python -m recsmith ARGS`` run on a pseudo-terminal, ANSI codes removed."""
    main, sub = pty.openpty()
    env = dict(os.environ, TERM="xterm", COLUMNS="160")
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsmith", *args], stdout=subprocess.DEVNULL, stderr=sub, env=env
    )
    os.close(sub)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([main], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no output for {timeout}s from {args}")
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed its side: Linux answers EIO
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(main)
        proc.kill() if proc.poll() is None else None
        proc.wait(timeout=30)
    assert proc.returncode == 0, seen.decode(errors="replace")
    return ANSI.sub("", seen.decode(errors="replace"))


def piped(args: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "recsmith", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.fixture
def train_args(events_csv: Path, tmp_path: Path) -> list[str]:
    config = tmp_path / "pipeline.toml"
    config.write_text(PIPELINE)
    return ["train", "--data", str(events_csv), "--pipeline", str(config)]


def test_pipeline_training_shows_each_stage_with_its_time(
    train_args: list[str], tmp_path: Path
) -> None:
    said = on_a_terminal([*train_args, "--out", str(tmp_path / "p")])
    for stage in STAGES:
        assert re.search(rf"✓ {stage} +\d+\.\ds", said), (stage, said)
    assert re.search(rf"✓ saving to {re.escape(str(tmp_path / 'p'))} +\d+\.\ds", said)
    assert "trained pipeline" in said  # the summary still follows


def test_quiet_or_piped_training_shows_no_progress(train_args: list[str], tmp_path: Path) -> None:
    quiet = on_a_terminal(["-q", *train_args, "--out", str(tmp_path / "q")])
    plain = piped([*train_args, "--out", str(tmp_path / "r")])
    assert "ranker " in plain  # stderr is read: the summary line is there
    for said in (quiet, plain):
        assert "✓" not in said and not re.search(rf"({'|'.join(STAGES)}) +\d", said), said


def test_evaluation_shows_each_model_on_a_terminal_only(events_csv: Path) -> None:
    args = ["evaluate", "--data", str(events_csv), "--models", "popular,itemknn"]
    said = on_a_terminal(args)
    for model in ("popular", "itemknn"):
        assert re.search(rf"✓ {model} +\d+\.\ds", said), said
    for silent in (piped(args), on_a_terminal(["-q", *args])):
        assert "✓" not in silent and not re.search(r"(popular|itemknn) +\d", silent), silent
