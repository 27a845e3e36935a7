"""A trained directory that is not there (or is a file, or holds no model): every command that
reads one names its option and the path, and exits 2 (was "not a model directory (no
manifest.json): nothere", which named no option)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()

#: Each command with the option that takes the directory, the path last.
COMMANDS = [
    (["recommend", "--users", "u1", "--model-dir"], "--model-dir"),
    (["monitor", "--model-dir"], "--model-dir"),
    (["deploy", "--registry", "{tmp}/registry", "--model-dir"], "--model-dir"),
    (["deploy", "--registry", "{tmp}/registry", "--canary", "10", "--model-dir"], "--model-dir"),
    (["ope", "replay", "--pipeline"], "--pipeline"),
    (["evaluate", "--decisions", "--pipeline"], "--pipeline"),
]
#: (what the path is, how to make it under tmp, the reason said after the path).
PATHS = [
    ("missing", lambda tmp: tmp / "nothere", "no such directory: {path}"),
    ("a file", lambda tmp: _file(tmp / "e.csv"), "{path} is a file, not a trained model directory"),
    (
        "empty",
        lambda tmp: _dir(tmp / "empty"),
        "{path} holds no trained model (no manifest.json; `recsmith train --out DIR` writes one)",
    ),
]


def _file(path: Path) -> Path:
    path.write_text("user_id,item_id\n")
    return path


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(("args", "option"), COMMANDS)
@pytest.mark.parametrize(("what", "make", "reason"), PATHS, ids=[p[0] for p in PATHS])
def test_the_option_and_the_path_are_named(
    tmp_path: Path, args: list[str], option: str, what: str, make: object, reason: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    argv = [a.format(tmp=tmp_path) for a in args]
    result = runner.invoke(app, [*argv, str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {option}: {reason.format(path=path)}\n", what
    assert not (tmp_path / "registry").exists()  # deploy published nothing
