"""What every command shares: settings from the root callback, output helpers, exit codes.

Exit codes follow LensKit: 2 for a usage or input error (a bad flag, file or value), 3 for a failure
while running. Errors print as ``error: <field>: <reason>`` on stderr; ``--json`` output goes to
stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from recsmith.config import Settings
from recsmith.errors import RecsmithError, StoreUnavailable, UnknownModelError, ValidationError
from recsmith.json_text import finite_or_null
from recsmith.store.url_scheme import store_url_problem

if TYPE_CHECKING:  # the models (numpy, scipy…) are imported by the commands that need them
    from recsmith.models.base import Recommender

stderr = Console(stderr=True)
#: Wide when piped or captured, so tables are never cut to 80 columns in logs and CI.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


@dataclass(frozen=True, slots=True)
class CliState:
    """Passed from the root callback to every command through ``ctx.obj``."""

    settings: Settings
    quiet: bool = False
    verbose: bool = False

    @property
    def show_progress(self) -> bool:
        return not self.quiet and stderr.is_terminal


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):  # pragma: no cover - the callback always sets it
        raise RuntimeError("CLI state missing")
    return obj


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` (one such line per line of the message, e.g. one per bad
    setting) and return the exit to raise. Never wrapped, so each problem stays on one line that
    ``grep`` and log collectors keep whole."""
    for line in message.splitlines() or [""]:
        stderr.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def errors_as_exit() -> Iterator[None]:
    """Turn recsmith's errors into a one-line message and the right exit code."""
    try:
        yield
    except (ValidationError, UnknownModelError, FileNotFoundError) as exc:
        raise fail(str(exc), 2) from None
    except (StoreUnavailable, RecsmithError) as exc:
        raise fail(str(exc), 3) from None


def known_model(name: str, option: str = "--model") -> str:
    """``name`` when recsmith has such a model, else the usage error naming ``option`` (the
    registry alone says ``unknown model``, which does not say which option to fix)."""
    from recsmith.models.registry import model_class  # every model: not for every command

    try:
        model_class(name)
    except UnknownModelError as exc:
        raise ValidationError(option, str(exc)) from None
    return name


def new_model(
    name: str, typed: dict[str, str], from_file: dict[str, Any] | None = None
) -> Recommender:
    """The unfitted ``--model``, with parameters from a ``--params-file`` overridden by the
    ``--param`` ones (``typed``); a bad one is named by the option that gave it (the registry
    alone says ``param KEY``), before any data is read."""
    from recsmith.models.registry import ParamError, create

    try:
        return create(known_model(name), **((from_file or {}) | typed))
    except ParamError as exc:
        option = "--param" if exc.param in typed else "--params-file"
        raise ValidationError(option, f"{exc.param}: {exc.problem} (model {name})") from None


def _checked_store_url(url: str | None) -> str | None:
    """A ``--store`` URL no backend opens is refused as ``--store`` before the command runs; the
    config's ``store.url`` is checked where it is used instead (``resolve_store_url``)."""
    problem = None if url is None else store_url_problem(url)
    if problem is not None:
        raise fail(f"--store: {problem}")
    return url


def resolve_store_url(option: str | None, settings: Settings) -> str:
    """The store a command opens: its ``--store`` (checked as the option was read), else the
    config's ``store.url``, checked here and named as that setting. Here rather than when the
    settings are read, so a bad URL in the file or ``RECSMITH_STORE__URL`` stops only commands
    that would use it: not ``version``, ``--help``, or a command given a good ``--store``."""
    if option is not None:
        return option
    problem = store_url_problem(settings.store.url)
    if problem is not None:
        raise fail(f"store.url: {problem}")
    return settings.store.url


#: Every command's ``--store``; without it, the config's ``store.url``.
StoreOption = Annotated[
    str | None,
    typer.Option(help="Store URL (default: the config's store.url).", callback=_checked_store_url),
]


def print_json(payload: Any) -> None:
    """One JSON object on one line, the last thing on stdout (scripts read it); a value that
    is not a finite number is null (``NaN`` is not JSON)."""
    sys.stdout.write(json.dumps(finite_or_null(payload), default=str) + "\n")
    sys.stdout.flush()
