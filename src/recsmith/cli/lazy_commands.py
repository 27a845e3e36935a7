"""The commands of ``recsmith``, each imported only when it is run (or listed by ``--help``).

Importing every command's module up front (training, evaluation, Spark, the server, scipy …) cost
~2.5 s of CPU at every start, for ``recsmith version`` as for each server worker and each import.
Here a command is a name and where its function (or Typer sub-app) lives; ``LazyGroup`` imports
that module the first time Click asks for the command, and builds it as Typer would have.
``--help`` at the root still lists every command with its help (it asks for each one).

A new command is one line in ``COMMANDS`` (the order is the order ``--help`` lists them in).
"""

from __future__ import annotations

import importlib
from typing import Any

import click
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from recsmith.cli.global_options import RootGroup
from recsmith.cli.help_text import reflow_tree

#: name -> (module under ``recsmith.cli``, attribute): a command function or a ``typer.Typer``.
COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("import_", "import_command"),
    "consume": ("consume", "consume_command"),
    "train": ("train", "train"),
    "recommend": ("recommend", "recommend"),
    "evaluate": ("evaluate", "evaluate"),
    "tune": ("tune", "tune"),
    "serve": ("serve", "serve"),
    "quickstart": ("quickstart", "quickstart"),
    "deploy": ("releases", "deploy"),
    "rollback": ("releases", "rollback"),
    "releases": ("releases", "releases"),
    "backup": ("backup", "backup_command"),
    "restore": ("backup", "restore_command"),
    "kpis": ("kpis", "kpis_command"),
    "monitor": ("monitor", "monitor_command"),
    "retrain": ("retrain", "retrain_command"),
    "purge": ("purge", "purge_command"),
    "audit": ("audit", "audit_command"),
    "keys": ("keys", "app"),
    "experiment": ("experiment", "app"),
    "decisions": ("decisions", "app"),
    "ope": ("ope", "app"),
    "users": ("users", "app"),
    "fairness": ("fairness", "app"),
    "deadletters": ("deadletters", "app"),
    "rules": ("rules", "app"),
}


def build(name: str, target: Any, group: RootGroup) -> click.Command:
    """The Click command Typer makes of ``target`` (a function, or a sub-app) under ``name``."""
    if callable(target) and not hasattr(target, "registered_commands"):
        return get_command_from_info(
            CommandInfo(name=name, callback=target),
            pretty_exceptions_short=False,
            rich_markup_mode=group.rich_markup_mode,
        )
    return get_group_from_info(
        TyperInfo(target, name=name),
        pretty_exceptions_short=False,
        suggest_commands=group.suggest_commands,
        rich_markup_mode=group.rich_markup_mode,
    )


class LazyGroup(RootGroup):
    """``RootGroup`` whose commands of ``COMMANDS`` are built on first use (module docstring)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.commands, *(name for name in COMMANDS if name not in self.commands)]

    def get_command(self, ctx: click.Context | None, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            target = getattr(importlib.import_module(f"recsmith.cli.{module}"), attribute)
            self.commands[cmd_name] = build(cmd_name, target, self)
            # reflowed here, not only when run: the root's --help lists each one's first paragraph
            reflow_tree(self.commands[cmd_name])
        return self.commands.get(cmd_name)
