"""A model directory from another recsmith, or copied in part: one line naming ``--model-dir``,
the path and what to do, never a bare ``[Errno 2]`` nor a traceback from the server's start-up.

Found by a new user's edges (qa20): a directory missing ``model/`` made ``recommend`` print
``error: [Errno 2] No such file or directory: 'mv/model/model.json'`` and ``serve`` die in a
start-up traceback; ``"format_version": "2"`` (a string) read "unsupported model format 2",
which looks supported, and ``true`` loaded as format 1 (``True == 1``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith import __version__
from recsmith.cli.app import app

pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(events_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("m") / "model"
    result = runner.invoke(
        app, ["train", "--data", str(events_csv), "--model", "popular", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    return copy


def _recommend(path: Path, tmp_path: Path) -> tuple[int, str]:
    users = tmp_path / "users.txt"
    users.write_text("u1\n")
    result = runner.invoke(app, ["recommend", "--model-dir", str(path), "--users", str(users)])
    return result.exit_code, result.stderr


@pytest.mark.parametrize("part", ["model", "fallback", "ids", "seen"])
def test_a_missing_part_is_named(model_dir: Path, tmp_path: Path, part: str) -> None:
    copy = _copy(model_dir, tmp_path)
    shutil.rmtree(copy / part)
    shown = f"{part}/model.json" if part in ("model", "fallback") else part
    assert _recommend(copy, tmp_path) == (
        2,
        f"error: --model-dir: {copy} is incomplete: {shown} is missing (a partial copy? copy "
        "the whole directory, or train it again)\n",
    )


def _with_format(model_dir: Path, tmp_path: Path, value: object) -> Path:
    copy = _copy(model_dir, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = value
    manifest["recsmith_version"] = "9.9"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


@pytest.mark.parametrize(
    ("value", "shown", "hint"),
    [
        (3, "3", "a newer recsmith wrote it: upgrade, or retrain it with this one"),
        ("2", "'2'", "retrain it with this recsmith"),
        (True, "True", "retrain it with this recsmith"),
        (None, "None", "retrain it with this recsmith"),
    ],
)
def test_an_unreadable_format_says_which_and_what_to_do(
    model_dir: Path, tmp_path: Path, value: object, shown: str, hint: str
) -> None:
    copy = _with_format(model_dir, tmp_path, value)
    assert _recommend(copy, tmp_path) == (
        2,
        f"error: --model-dir: {copy}: unsupported model format {shown} (written by recsmith "
        f"9.9); recsmith {__version__} reads formats 1, 2: {hint} (`recsmith train`)\n",
    )


@pytest.mark.slow
def test_serve_refuses_a_partial_copy_in_one_line(model_dir: Path, tmp_path: Path) -> None:
    copy = _copy(model_dir, tmp_path)
    shutil.rmtree(copy / "model")
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    command = [sys.executable, "-m", "recsmith", "serve", "--store", store, "--model-dir"]
    # a server that starts anyway never exits: the timeout is the failure
    done = subprocess.run([*command, str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --model-dir: {copy} is incomplete: model/model.json is missing (a partial "
        "copy? copy the whole directory, or train it again)"
    ]
