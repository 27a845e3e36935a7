"""What quickstart's suggested commands start with: ``recsmith`` only where the shell finds it.

The README installs into ``.venv`` without activating it, so a bare ``recsmith`` would answer
"command not found" to every line quickstart printed (found trying the first hour as a new user).
"""

import os
import stat
import sys
from pathlib import Path

import pytest

from recsmith.cli.quickstart import command_name


def test_on_the_path_the_bare_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "recsmith"
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert command_name() == "recsmith"


def test_off_the_path_the_script_beside_this_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv_bin = tmp_path / "my venv" / "bin"  # a space: the printed path must stay one word
    venv_bin.mkdir(parents=True)
    (venv_bin / "recsmith").write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(sys, "executable", str(venv_bin / "python"))
    assert command_name() == f"'{venv_bin / 'recsmith'}'"


def test_nowhere_the_bare_name_still(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert not os.path.exists(tmp_path / "recsmith")
    assert command_name() == "recsmith"
