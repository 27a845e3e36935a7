"""Every command's help wraps its paragraphs to the terminal, not to the source's line breaks."""

from __future__ import annotations

from itertools import pairwise

import click
import pytest
import typer.main
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.cli.help_text import reflowed
from recsmith.cli.lazy_commands import COMMANDS

runner = CliRunner()
WIDTH = 80
USABLE = WIDTH - 2  # Rich pads the help text by one column on each side


def _command_lines() -> list[list[str]]:
    """Each command's and sub-command's argument list for ``--help``."""
    root = typer.main.get_command(app)
    lines = [[name] for name in COMMANDS]
    for name in COMMANDS:
        command = root.get_command(click.Context(root), name)  # type: ignore[attr-defined]
        lines += [[name, sub] for sub in getattr(command, "commands", {})]
    return lines


def _description(output: str) -> list[list[str]]:
    """The paragraphs (lists of printed lines) between the usage line and the first panel."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Usage:")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("╭"))
    paragraphs: list[list[str]] = [[]]
    for line in lines[start:end]:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


@pytest.mark.parametrize("args", _command_lines(), ids=" ".join)
def test_help_paragraphs_fill_each_line_before_breaking(args: list[str]) -> None:
    result = runner.invoke(
        app, [*args, "--help"], env={"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": str(WIDTH)}
    )
    assert result.exit_code == 0, result.output
    for paragraph in _description(result.output):
        for line, following in pairwise(paragraph):
            # greedy wrapping: a line breaks only where the next word would not fit on it
            assert len(line) + 1 + len(following.split()[0]) > USABLE, (args, line, following)


def test_reflowed_joins_lines_keeps_paragraphs_and_click_markers() -> None:
    text = """First line
        goes on.

        Second paragraph
        on two lines.

        \b
        kept
        as is
        \f
        hidden
        part"""
    assert reflowed(text) == (
        "First line goes on.\n\nSecond paragraph on two lines.\n\n\b\nkept\nas is\n\f\nhidden\npart"
    )


def test_the_root_help_lists_each_command_in_lines_filled_before_breaking() -> None:
    """The commands panel shows each command's first paragraph: built lazily, it was listed
    with the source's line breaks ("validated as over" on one line, "HTTP, …" on the next)."""
    result = runner.invoke(app, ["--help"], env={"COLUMNS": str(WIDTH), "TERMINAL_WIDTH": "80"})
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("╭─ Commands"))
    panel = [line[1:-1] for line in lines[start + 1 :] if line.startswith("│")]  # the last box
    column = panel[0].index(panel[0].split()[1])  # where the descriptions start
    for line, following in pairwise(panel):
        if following[:column].strip():  # the next command's first line
            continue
        room = len(line) - len(line.rstrip()) - 1  # Rich keeps one column of padding
        assert len(following.split()[0]) + 1 > room, (line, following)
