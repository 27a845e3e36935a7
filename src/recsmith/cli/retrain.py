"""``recsmith retrain``: a new release from the store's events, deployed only if it is as good."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    new_model,
    print_json,
    resolve_store_url,
    state,
    stderr,
    stdout,
)
from recsmith.cli._data import load_catalog, load_events, profiles_by_id
from recsmith.cli.audit import audited
from recsmith.errors import ValidationError
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.gate import DEFAULT_GATE, parse_gate
from recsmith.lifecycle.holdout import DEFAULT_FRACTION
from recsmith.lifecycle.judge import Candidate
from recsmith.lifecycle.retrain import RetrainResult, retrain
from recsmith.models.registry import MODELS, parse_params
from recsmith.pipeline.config import load_pipeline_config

#: Exit status when a gate fails (a failed check, as elsewhere).
GATE_FAILED = 3


def retrain_command(
    ctx: typer.Context,
    registry: Annotated[
        Path | None, typer.Option(help="Registry to deploy to (default: serving.registry).")
    ] = None,
    pipeline: Annotated[
        Path | None, typer.Option(help="Pipeline TOML to train (default: the current release's).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help=f"Train this model instead: {', '.join(sorted(MODELS))}."),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Model parameter key=value (repeat; with --model).")
    ] = None,
    gate: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Deploy only if this holds (repeat: all must): {DEFAULT_GATE!r} by default; "
            "METRIC@K >= NUMBER | current | FACTOR * current | current - DELTA."
        ),
    ] = None,
    holdout: Annotated[
        float,
        typer.Option(help="Share of the newest events judged on (after the current release's)."),
    ] = DEFAULT_FRACTION,
    store: StoreOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Judge and report; never deploy.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Train a candidate (the current release's config, or --pipeline/--model) on the events
    before the newest holdout, judge it against the current release on that holdout, and, if
    every --gate passes, train it on all events and deploy it (exit 3 when a gate fails)."""
    cli = state(ctx)
    with errors_as_exit():
        root = registry or cli.settings.serving.registry
        if root is None:
            raise ValidationError("--registry", "give --registry or set serving.registry in config")
        if pipeline is not None and model is not None:
            raise ValidationError("--pipeline", "give --pipeline or --model, not both")
        gates = [parse_gate(text) for text in (gate or [DEFAULT_GATE])]
        candidate = None
        if pipeline is not None:
            candidate = Candidate(pipeline=load_pipeline_config(pipeline))
        elif model is not None:
            params = parse_params(param or [])
            new_model(model, params)  # a bad name or parameter refused before any data is read
            candidate = Candidate(model=model, params=params)
        url = resolve_store_url(store, cli.settings)
        events = load_events(None, url, cli.settings)
        items = load_catalog(None, None, url, cli.settings)
        status = (
            stderr.status("training and judging the candidate", spinner="dots")
            if cli.show_progress
            else nullcontext()
        )
        with status, audited(cli.settings, "retrain", store_url=url) as act:
            result = retrain(
                ModelRegistry(root),
                events,
                dict(cli.settings.events.weights),
                gates,
                candidate=candidate,
                items=items,
                half_life_days=cli.settings.features.half_life_days,
                profiles=profiles_by_id(None, None, url, cli.settings),
                holdout_fraction=holdout,
                deploy=not dry_run,
            )
            act.target = result.deployed or ""
            act.detail = {
                "passed": result.passed,
                "current": result.current,
                "gates": [g.gate for g in result.gates],
                "dry_run": dry_run,
            }
    if json_out:
        print_json(result.as_dict())
    else:
        _print(result)
    if not result.passed:
        raise typer.Exit(GATE_FAILED)


def _print(result: RetrainResult) -> None:
    j = result.judgement
    table = Table(title=f"candidate vs {result.current or 'nothing'}: {j.users:,} users, k = {j.k}")
    for column in ("gate", "candidate", "current", "threshold", "passed"):
        table.add_column(column, justify="left" if column == "gate" else "right")
    for g in result.gates:
        table.add_row(
            g.gate,
            f"{g.candidate:.4f}",
            "-" if g.current is None else f"{g.current:.4f}",
            "-" if g.threshold is None else f"{g.threshold:.4f}",
            "[green]yes[/]" if g.passed else "[red]no[/]",
        )
    stdout.print(table)
    if j.paired is not None:
        stdout.print(
            f"candidate − current: {j.paired.mean_diff:+.4f} "
            f"(95% CI {j.paired.ci_low:+.4f} to {j.paired.ci_high:+.4f}, "
            f"p = {j.paired.p_value:.3g})"
        )
    for note in result.notes:
        stdout.print(f"note: {note}")
    if result.deployed:
        stdout.print(f"deployed {result.deployed} (was {result.current or 'nothing'})")
    elif result.passed:
        stdout.print("gates passed; --dry-run: nothing deployed")
    else:
        stdout.print("a gate failed: nothing deployed")
