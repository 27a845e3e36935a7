"""Commands are imported only when they run (``cli.lazy_commands``), and none is left out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import recsmith.cli
from recsmith.cli.app import app
from recsmith.cli.lazy_commands import COMMANDS

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
#: modules of ``recsmith.cli`` that hold no command of their own
HELPERS = {
    "__init__",
    "_common",
    "_data",
    "app",
    "global_options",
    "help_text",
    "lazy_commands",
    "out_path",
    "progress",
    "reject_limit",
    "serve_checks",
    "trained_dir",
    "users_file",
}


def test_version_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "from recsmith.cli.app import app\n"
        "app(['version'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.startswith('recsmith.cli.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "0.1.0"
    loaded = {name.rsplit(".", 1)[1] for name in eval(out[1])}  # a printed list of names
    assert loaded <= HELPERS, loaded - HELPERS


def test_root_help_lists_every_command_with_its_help() -> None:
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for name in ["version", *COMMANDS]:
        assert f" {name} " in result.output, name
    assert "Serve recommendations, ingestion and health over HTTP" in result.output


def test_every_command_module_is_registered_and_each_entry_builds_its_command() -> None:
    modules = {p.stem for p in Path(recsmith.cli.__file__).parent.glob("*.py")}
    assert modules - HELPERS == {module for module, _ in COMMANDS.values()}
    for name in COMMANDS:
        result = runner.invoke(app, [name, "--help"], env=WIDE)
        assert result.exit_code == 0, (name, result.output)
        assert f"recsmith {name} " in result.output or f" {name} " in result.output, name


def test_global_options_after_a_lazy_command_still_move_in_front() -> None:
    result = runner.invoke(app, ["version", "-q"])
    assert (result.exit_code, result.stdout) == (0, "0.1.0\n")
