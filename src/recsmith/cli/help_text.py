"""Command help as paragraphs that wrap to the terminal, not to the source's line breaks.

Typer's Rich help joins the single line breaks of a docstring's first paragraph but keeps those of
every later one (``typer.rich_utils._fix_linebreaks`` only joins paragraphs), so a docstring
wrapped at 100 columns in the source came out at 80 columns as alternating long and short lines:
each line ended where the source's did, and Rich wrapped what did not fit. Click's own formatter
rewraps paragraphs; this gives the Rich help the same paragraphs. A paragraph that starts with
Click's ``\\b`` marker keeps its lines, as Click keeps them.
"""

from __future__ import annotations

import inspect
from typing import Any

NO_REWRAP = "\b"


def reflowed(text: str) -> str:
    """``text`` (a docstring) with each paragraph's lines joined by single spaces; paragraphs
    stay separated by blank lines, and what follows Click's ``\\f`` (help cut-off) is kept
    as it is."""
    shown, cut, hidden = inspect.cleandoc(text).partition("\f")
    paragraphs = (
        paragraph
        if paragraph.lstrip("\n").startswith(NO_REWRAP)
        else " ".join(line.strip() for line in paragraph.splitlines() if line.strip())
        for paragraph in shown.split("\n\n")
    )
    return "\n\n".join(p for p in paragraphs if p) + cut + hidden


def reflow_tree(command: Any) -> None:
    """Every help text of ``command`` and of the commands under it, reflowed in place."""
    if command.help:
        command.help = reflowed(command.help)
    for sub in getattr(command, "commands", {}).values():
        reflow_tree(sub)
