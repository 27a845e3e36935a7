"""The Typer root: global options, then one command per module (``lazy_commands``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsmith import __version__
from recsmith.cli._common import CliState, errors_as_exit
from recsmith.cli.lazy_commands import LazyGroup
from recsmith.config import load_settings

app = typer.Typer(
    name="recsmith",
    # -c/-q/-v also after the command; flags shown without a type; each command's module is
    # imported only when it runs (``lazy_commands.COMMANDS`` lists them)
    cls=LazyGroup,
    help="Self-hostable recommendation engine: events in, recommendations out, with evaluation. "
    "-c, -q and -v may go before or after the command (recsmith train -q).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    """``recsmith --version`` (what a newcomer types first) answered "No such option: --version
    (Possible options: --verbose)"; the ``version`` command stays."""
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="TOML config file (default: ./recsmith.toml if present)."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More output.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors.")] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print the recsmith version and exit.",
        ),
    ] = False,
) -> None:
    """Settings come from the config file, then RECSMITH_SECTION__KEY environment variables."""
    with errors_as_exit():
        settings = load_settings(config)
    ctx.obj = CliState(settings=settings, quiet=quiet, verbose=verbose)


@app.command()
def version() -> None:
    """Print the recsmith version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    app()
