"""The Typer root: global options, then one command per module."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsmith import __version__
from recsmith.cli import (
    audit,
    backup,
    consume,
    deadletters,
    decisions,
    evaluate,
    experiment,
    fairness,
    import_,
    keys,
    kpis,
    monitor,
    ope,
    purge,
    quickstart,
    recommend,
    releases,
    retrain,
    rules,
    serve,
    train,
    tune,
    users,
)
from recsmith.cli._common import CliState, errors_as_exit
from recsmith.cli.global_options import RootGroup
from recsmith.config import load_settings

app = typer.Typer(
    name="recsmith",
    cls=RootGroup,  # -c/-q/-v also after the command; flags shown without a type
    help="Self-hostable recommendation engine: events in, recommendations out, with evaluation. "
    "-c, -q and -v may go before or after the command (recsmith train -q).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
) -> None:
    """Settings come from the config file, then RECSMITH_SECTION__KEY environment variables."""
    with errors_as_exit():
        settings = load_settings(config)
    ctx.obj = CliState(settings=settings, quiet=quiet, verbose=verbose)


@app.command()
def version() -> None:
    """Print the recsmith version."""
    typer.echo(__version__)


app.command("import")(import_.import_command)
app.command("consume")(consume.consume_command)
app.command()(train.train)
app.command()(recommend.recommend)
app.command()(evaluate.evaluate)
app.command()(tune.tune)
app.command()(serve.serve)
app.command()(quickstart.quickstart)
app.command()(releases.deploy)
app.command()(releases.rollback)
app.command()(releases.releases)
app.command("backup")(backup.backup_command)
app.command("restore")(backup.restore_command)
app.add_typer(keys.app, name="keys")
app.add_typer(experiment.app, name="experiment")
app.add_typer(decisions.app, name="decisions")
app.command("kpis")(kpis.kpis_command)
app.command("monitor")(monitor.monitor_command)
app.command("retrain")(retrain.retrain_command)
app.add_typer(ope.app, name="ope")
app.add_typer(users.app, name="users")
app.command("purge")(purge.purge_command)
app.add_typer(fairness.app, name="fairness")
app.command("audit")(audit.audit_command)
app.add_typer(deadletters.app, name="deadletters")
app.add_typer(rules.app, name="rules")


def main() -> None:
    """Console-script entry point."""
    app()
