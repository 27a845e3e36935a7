"""``recsmith ope estimate``: off-policy estimates of a target policy from a logged file;
``recsmith ope replay``: of a candidate model or pipeline from the decision log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    print_json,
    resolve_store_url,
    state,
    stderr,
    stdout,
)
from recsmith.cli.decisions import OpeReward
from recsmith.cli.trained_dir import check_trained_dir
from recsmith.decisions.outcomes import shown_and_attributed
from recsmith.decisions.timespec import parse_time
from recsmith.errors import ValidationError
from recsmith.ope import ESTIMATORS, estimate
from recsmith.ope.estimators import check_estimators
from recsmith.ope.evaluate import OpeReport
from recsmith.ope.inputs import read_table
from recsmith.ope.replay import replay, served_candidate
from recsmith.pipeline.artifact import load_artifact
from recsmith.store.open import open_store

app = typer.Typer(
    help="Off-policy evaluation over logged files or the decision log.", no_args_is_help=True
)


def estimator_names(text: str) -> tuple[str, ...]:
    """``"ips, snips"`` → ``("ips", "snips")``: the comma-separated option, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


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
        names = estimator_names(estimators)
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
        _print_report(report, "Off-policy estimates")
    if json_out:
        print_json(report.as_json())


def _print_report(report: OpeReport, title: str) -> None:
    size = f"{report.rounds:,} rounds, {report.impressions:,} impressions"
    table = Table(title=f"{title} ({size})")
    for column in ("estimator", "value", "95% CI"):
        table.add_column(column, justify="left" if column == "estimator" else "right")
    for name, value in report.values.items():
        lo, hi = report.intervals[name]
        table.add_row(name, f"{value:.5g}", f"[{lo:.5g}, {hi:.5g}]")
    stdout.print(table)
    tau = "" if report.switch_tau is None else f", switch-dr tau {report.switch_tau:.4g}"
    stdout.print(f"effective sample size {report.ess:,.1f} of {report.impressions:,}{tau}")


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    pipeline: Annotated[
        Path, typer.Option(help="The candidate: a trained model or pipeline directory.")
    ],
    since: Annotated[
        str, typer.Option(help="Start: 7d, 12h, 30m back from now, or an ISO 8601 date-time.")
    ] = "30d",
    until: Annotated[str | None, typer.Option(help="End (exclusive); default: now.")] = None,
    reward: Annotated[
        OpeReward, typer.Option(help="The outcome per impression: click, purchase or revenue.")
    ] = OpeReward.click,
    estimators: Annotated[
        str, typer.Option(help=f"Comma-separated, from {','.join(ESTIMATORS)}.")
    ] = "ips,snips,dr",
    clip: Annotated[
        float | None, typer.Option(help="Cap IPS importance weights at this value.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap replicates for the 95 % intervals.")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of folds and bootstrap.")] = 0,
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Estimate a candidate's reward per impression on the lists the served policy logged.

    Each logged unit's list is asked of the candidate, and the decision log's propensities and
    attributed outcomes give IPS/SNIPS/DR estimates beside the served policy's observed value.
    Informative where the served policy explored (an explore table); a deterministic log supports
    the candidate only where the lists agree, and the warnings say how much (README: Off-policy
    evaluation)."""
    cli = state(ctx)
    with errors_as_exit():
        start, end = parse_time(since, "--since"), parse_time(until, "--until")
        names = estimator_names(estimators)
        check_estimators(names)  # before the candidate and the log are loaded
        check_trained_dir(pipeline, "--pipeline")
        candidate = served_candidate(load_artifact(pipeline))
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            shown, attributed = shown_and_attributed(db, start, end, cli.settings.decisions.kinds())
        finally:
            db.close()
        if shown["unit"].notna().sum() == 0:
            raise ValidationError("--since", "no list asked for by a unit in this window")
        found = replay(
            shown,
            attributed,
            candidate,
            reward.value,
            names,
            clip=clip,
            bootstrap=bootstrap,
            seed=seed,
        )
    for warning in found.report.warnings:
        stderr.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if not (json_out and cli.quiet):
        _print_report(found.report, f"Candidate {pipeline.name}, {reward.value} per impression")
        stdout.print(
            f"served policy, observed: {found.observed:.5g} per impression "
            f"({found.lists:,} lists, {found.units:,} units)"
        )
    if json_out:
        print_json(
            {
                **found.report.as_json(),
                "observed": found.observed,
                "lists": found.lists,
                "units": found.units,
            }
        )
