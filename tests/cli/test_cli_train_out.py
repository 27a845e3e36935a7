"""``train --out`` that cannot become a model directory is refused before any training, in one
line naming the option ``--out``, the path and the reason, as every other option's message does
(``error: --out: ...``). The oracle for "before any training" is a ``--data`` that does not exist:
a check that ran after reading the events would report ``--data`` instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

runner = CliRunner()


def _setup_file(tmp: Path) -> tuple[Path, str]:
    out = tmp / "model.txt"
    out.write_text("my notes\n")
    return (
        out,
        f"error: --out: {out} exists and is not a directory (a model is saved as a directory)",
    )


def _setup_notes(tmp: Path) -> tuple[Path, str]:
    out = tmp / "notes"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    return out, (
        f"error: --out: {out} holds files but no model (no manifest.json): refusing to replace it"
    )


def _setup_under_a_file(tmp: Path) -> tuple[Path, str]:
    blocker = tmp / "plain"
    blocker.write_text("x\n")
    out = blocker / "sub" / "model"
    return out, f"error: --out: {out} cannot be created: {blocker} is not a directory"


def _setup_symlink_loop(tmp: Path) -> tuple[Path, str]:
    out = tmp / "loopy"
    out.symlink_to(out.name)  # points at itself
    return out, f"error: --out: {out} cannot be resolved (a symlink loop)"


@pytest.mark.parametrize(
    "setup", [_setup_file, _setup_notes, _setup_under_a_file, _setup_symlink_loop]
)
@pytest.mark.parametrize("pipeline", [False, True])
def test_a_wrong_out_names_the_option_before_any_training(
    tmp_path: Path, setup: object, pipeline: bool
) -> None:
    out, expected = setup(tmp_path)  # type: ignore[operator]
    missing = tmp_path / "no-such-events.csv"
    args = ["train", "--data", str(missing), "--model", "popular", "--out", str(out)]
    if pipeline:
        args += ["--pipeline", str(tmp_path / "no-such-pipeline.toml")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.splitlines() == [expected]
