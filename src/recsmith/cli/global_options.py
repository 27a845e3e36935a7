"""The root command group: global options anywhere on the line, and flags shown as flags.

``recsmith train -q`` answered "No such option: -q": the global options (``-c``, ``-q``, ``-v``)
belong to the root group, so Click only takes them before the command name, and putting them
after it is what people type. ``RootGroup`` moves them in front of the command before parsing,
unless the command has an option of the same name (its own then wins).

Typer's rich help also printed a type tag for flags (``--json <bool>``), which reads as if the
flag takes a value; every flag's tag is blanked here, for the whole command tree at once, and the
tree's help paragraphs are reflowed (``help_text``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

from recsmith.cli.help_text import reflow_tree


def _options(command: Any) -> dict[str, bool]:
    """Every option string of ``command`` -> whether it takes a value."""
    out: dict[str, bool] = {}
    for param in command.params:
        if param.param_type_name == "option":
            takes_value = not (param.is_flag or param.count)
            for name in (*param.opts, *param.secondary_opts):
                out[name] = takes_value
    return out


def _value(rest: Iterator[str]) -> list[str]:
    """The next token (an option's value), if there is one."""
    return [token] if (token := next(rest, None)) is not None else []


def hoist_global_options(group: TyperGroup, args: list[str]) -> list[str]:
    """``args`` with ``group``'s own options that follow the command name moved before it.

    Walks the line as Click would: an option of the command being parsed keeps its value with
    it, a subgroup's command name descends into that subgroup, and ``--`` ends the walk (what
    follows is data). A command name that is not known leaves ``args`` as they are, for Click
    to report.
    """
    own = _options(group)
    index = 0
    while index < len(args) and (name := args[index].split("=", 1)[0]) in own:
        index += 1 + (own[name] and "=" not in args[index])  # global options already in front
    # get_command, not the commands dict: a lazy group builds the command on first use
    command = group.get_command(typer.Context(group), args[index]) if index < len(args) else None
    if command is None:
        return args
    kept: list[str] = []
    moved: list[str] = []
    rest = iter(args[index + 1 :])
    for token in rest:
        name = token.split("=", 1)[0]
        options = _options(command)
        if token == "--":
            kept += [token, *rest]
        elif name in options or name not in own:
            kept.append(token)
            if options.get(name) and "=" not in token:
                kept += _value(rest)  # the option's value, whatever it looks like
            elif not token.startswith("-"):
                command = getattr(command, "commands", {}).get(token, command)
        else:
            moved.append(token)
            if own[name] and "=" not in token:
                moved += _value(rest)
    return [*args[:index], *moved, args[index], *kept]


def _blank_flag_types(params: list[Any]) -> list[Any]:
    """A flag takes no value, so its help row shows no type (Typer would print ``<bool>``)."""
    for param in params:
        if param.param_type_name == "option" and (param.is_flag or param.count):
            param.metavar = ""
    return params


def _blank_tree(command: Any, ctx: typer.Context) -> None:
    """Every flag of ``command`` and of the commands under it, ``--help`` included (created on
    first use with the help names ``ctx`` passes down)."""
    _blank_flag_types(command.get_params(ctx))
    for sub in getattr(command, "commands", {}).values():
        _blank_tree(sub, ctx)


class RootGroup(TyperGroup):
    """``recsmith`` itself (see the module docstring)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(self, args))

    def get_params(self, ctx: typer.Context) -> list[Any]:
        return _blank_flag_types(super().get_params(ctx))

    def resolve_command(
        self, ctx: typer.Context, args: list[str]
    ) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:  # before the command parses its own --help
            _blank_tree(command, ctx)
            reflow_tree(command)
        return name, command, rest
