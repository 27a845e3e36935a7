"""Global options after the command (``recsmith train -q``) and flags shown without a type tag."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.cli.global_options import hoist_global_options

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def test_quiet_after_the_command_is_quiet_before_it(events_csv: Path, tmp_path: Path) -> None:
    line = ["--data", str(events_csv), "--model", "popular"]
    loud = runner.invoke(app, ["train", *line, "--out", str(tmp_path / "a")])
    after = runner.invoke(app, ["train", *line, "-q", "--out", str(tmp_path / "b")])
    before = runner.invoke(app, ["-q", "train", *line, "--out", str(tmp_path / "c")])
    assert loud.exit_code == after.exit_code == before.exit_code == 0, after.output
    assert "trained popular" in loud.stderr
    assert after.stderr == before.stderr == ""
    assert (tmp_path / "b" / "manifest.json").is_file()


def test_config_after_the_command_is_read(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "named.sqlite"}"\n')
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,event_type,timestamp\nu1,i1,view,1700000000\n")
    result = runner.invoke(app, ["import", str(events), "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "named.sqlite").is_file()


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (["train", "-q"], ["-q", "train"]),
        (
            ["-v", "train", "--out", "m", "-c", "x.toml"],
            ["-v", "-c", "x.toml", "train", "--out", "m"],
        ),
        (["train", "--config=x.toml"], ["--config=x.toml", "train"]),
        # an option's value is the command's, whatever it looks like
        (["train", "--out", "-q"], ["train", "--out", "-q"]),
        (["train", "--param", "-v", "-v"], ["-v", "train", "--param", "-v"]),
        # after --, everything is data
        (["recommend", "--", "-q"], ["recommend", "--", "-q"]),
        # into a subgroup's command
        (["keys", "create", "-q", "--name", "x"], ["-q", "keys", "create", "--name", "x"]),
        # an unknown command is left for Click to report
        (["trian", "-q"], ["trian", "-q"]),
        (["-c"], ["-c"]),
    ],
)
def test_global_options_move_before_the_command(line: list[str], parsed: list[str]) -> None:
    assert hoist_global_options(typer.main.get_command(app), line) == parsed  # type: ignore[arg-type]


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, (*path, name))
    return found


def test_help_shows_no_type_for_flags_and_a_type_for_values() -> None:
    tagged_flags, untagged_values, unseen = [], [], []
    for path, command in _commands(typer.main.get_command(app)):
        out = runner.invoke(app, [*path, "--help"], env=WIDE).stdout
        for param in [*getattr(command, "params", []), "help"]:
            if param == "help":
                name, flag = "--help", True
            elif param.param_type_name != "option" or param.hidden:
                continue
            else:
                name, flag = param.opts[-1 if param.opts[-1].startswith("--") else 0], param.is_flag
            rows = (
                r for r in out.splitlines() if re.search(rf"│ [ *]*{re.escape(name)}(?![\w-])", r)
            )
            row = next(rows, "")
            if not row:
                unseen.append((" ".join(path), name))
            # a type is shown as <type>, or as the metavar an option declares (N|P%)
            tag = "<" if flag or not param.metavar else re.escape(param.metavar)
            tagged = re.search(rf"{re.escape(name)}(\s+-\w)?\s+{tag}", row) is not None
            if flag and tagged:
                tagged_flags.append((" ".join(path), name, row))
            if not flag and not tagged:
                untagged_values.append((" ".join(path), name, row))
    assert not unseen
    assert not tagged_flags
    assert not untagged_values  # the check can tell a tag from none


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag_prints_the_installed_version(flag: str) -> None:
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0, result.output
    assert result.stdout == importlib.metadata.version("recsmith") + "\n"
