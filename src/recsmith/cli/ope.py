"""``recsmith ope estimate``: off-policy estimates of a target policy from a logged file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recsmith.cli._common import errors_as_exit, print_json, state, stderr, stdout
from recsmith.ope import ESTIMATORS, estimate
from recsmith.ope.inputs import read_table

app = typer.Typer(help="Off-policy evaluation over logged files.", no_args_is_help=True)


@app.command("estimate")
def estimate_command(
    ctx: typer.Context,
    log: Annotated[
        Path,
        typer.Option(
            help="CSV or Parquet, one row per logged round (and position): round, action, "
            "position (optional), reward, propensity, optional x_* context columns."
        ),
    ],
    target: Annotated[
        Path,
        typer.Option(
            help="CSV or Parquet, the target policy's distribution: round, position (optional), "
            "action, "
            "probability (actions not listed have probability 0)."
        ),
    ],
    estimators: Annotated[
        str, typer.Option(help=f"Comma-separated, from {','.join(ESTIMATORS)}.")
    ] = ",".join(ESTIMATORS),
    clip: Annotated[
        float | None, typer.Option(help="Cap IPS importance weights at this value.")
    ] = None,
    switch_tau: Annotated[
        float | None,
        typer.Option(help="Switch-DR weight threshold (default: chosen by estimated MSE)."),
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-fitting folds of the reward model.")] = 5,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap replicates for the 95 % intervals.")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of folds and bootstrap.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Estimate a target policy's mean reward per impression from another policy's log.

    IPS, SNIPS, DM, DR and Switch-DR (per round when the log has no positions), each with a
    bootstrap 95 % interval over rounds; prints the effective sample size and warns when the
    estimates are weak (README: Off-policy evaluation)."""
    cli = state(ctx)
    with errors_as_exit():
        names = tuple(name.strip() for name in estimators.split(",") if name.strip())
        report = estimate(
            read_table(log, "--log"),
            read_table(target, "--target"),
            names,
            clip=clip,
            switch_tau=switch_tau,
            folds=folds,
            bootstrap=bootstrap,
            seed=seed,
        )
    for warning in report.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if not (json_out and cli.quiet):
        size = f"{report.rounds:,} rounds, {report.impressions:,} impressions"
        table = Table(title=f"Off-policy estimates ({size})")
        for column in ("estimator", "value", "95% CI"):
            table.add_column(column, justify="left" if column == "estimator" else "right")
        for name, value in report.values.items():
            lo, hi = report.intervals[name]
            table.add_row(name, f"{value:.5g}", f"[{lo:.5g}, {hi:.5g}]")
        stdout.print(table)
        tau = "" if report.switch_tau is None else f", switch-dr tau {report.switch_tau:.4g}"
        stdout.print(f"effective sample size {report.ess:,.1f} of {report.impressions:,}{tau}")
    if json_out:
        print_json(report.as_json())
