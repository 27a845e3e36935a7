"""``recsmith monitor``: is the served release still fit for the traffic? Drift and freshness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    print_json,
    resolve_store_url,
    state,
    stdout,
)
from recsmith.cli.trained_dir import check_trained_dir
from recsmith.decisions.timespec import parse_time
from recsmith.errors import ValidationError
from recsmith.governance.releases import ModelRegistry
from recsmith.lifecycle.shadow_stats import registry_shadow
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.signals import MonitorReport, monitor
from recsmith.store.open import open_store

#: Exit status when a signal reaches the level --fail-on names (as a failed check: 3).
FAILED = 3
_COLOURS = {"ok": "green", "warn": "yellow", "alert": "red"}


def monitor_command(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="The recent window: 1d, 12h, … or an ISO date.")] = (
        "1d"
    ),
    registry: Annotated[
        Path | None, typer.Option(help="Judge this registry's current release (default: config).")
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Judge this trained directory instead of a registry's.")
    ] = None,
    store: StoreOption = None,
    fail_on: Annotated[
        str,
        typer.Option(
            help="Exit 3 when a signal reaches this level (alert, warn or never), or when the "
            "window has no events (no_data)."
        ),
    ] = "never",
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Drift between the release's training data and the window's events (event-type mix,
    item popularity, unknown users and items) and freshness (model age, events and catalogue
    changes since training, age of the newest event), each against `\\[monitor] thresholds`;
    and, with a registry, the figures of the release shadowing live traffic, over every server
    process (overlap with the served lists, latency)."""
    cli = state(ctx)
    with errors_as_exit():
        if fail_on not in ("alert", "warn", "never"):
            raise ValidationError("--fail-on", "must be alert, warn or never")
        start = parse_time(since, "--since")
        assert start is not None
        models = registry or cli.settings.serving.registry
        where = _release_dir(model_dir, models)
        release = ReleaseView.read(where)
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            report = monitor(db, release, start, cli.settings.monitor)
        finally:
            db.close()
        shadow = registry_shadow(models) if models is not None and models.is_dir() else None
    if json_out:
        print_json({**report.as_dict(), "shadow": shadow})
    else:
        _print(report)
        if shadow is not None:
            _print_shadow(shadow)
    worst = report.worst()
    judged_bad = worst == "alert" or (worst == "warn" and fail_on == "warn")
    if fail_on != "never" and (judged_bad or worst == "no_data"):  # a gate passes nothing unseen
        raise typer.Exit(FAILED)


def _release_dir(model_dir: Path | None, registry: Path | None) -> Path:
    if model_dir is not None:
        check_trained_dir(model_dir)
        return model_dir
    if registry is None:
        raise ValidationError("--registry", "give --registry or --model-dir (or serving.registry)")
    if not registry.is_dir():
        raise ValidationError("--registry", f"no such registry directory: {registry}")
    models = ModelRegistry(registry)
    version = models.current()
    if version is None:
        raise ValidationError("--registry", f"{registry} has no deployed release")
    return models.path(version)


def _print(report: MonitorReport) -> None:
    table = Table(
        title=f"{report.version}: {report.window_events:,} events since "
        f"{report.since:%Y-%m-%d %H:%M} UTC"
    )
    for column in ("signal", "value", "status", "warn", "alert", "note"):
        numeric = column in ("value", "warn", "alert")
        table.add_column(column, justify="right" if numeric else "left")
    for s in report.signals:
        colour = _COLOURS.get(s.status)
        status = f"[{colour}]{s.status}[/]" if colour else s.status
        table.add_row(s.name, _num(s.value), status, _num(s.warn), _num(s.alert), s.note)
    stdout.print(table)
    worst = report.worst()
    if worst == "no_data":
        stdout.print(
            f"overall: no_data: no events since {report.since:%Y-%m-%d %H:%M} UTC, nothing to "
            "judge (is ingest running? a longer --since?)"
        )
    else:
        stdout.print(f"overall: {worst}")


def _print_shadow(shadow: dict[str, Any]) -> None:
    """The shadow release's figures over every process that wrote them (``shadow_stats``)."""
    sample = shadow["sample"]
    rate = f" at {100 * sample:.3g} % of requests" if sample is not None else ""
    stdout.print(
        f"shadow: {shadow['release']}{rate}: {shadow['compared']:,} lists compared "
        f"({shadow['dropped']:,} dropped, {shadow['failed']:,} failed, "
        f"{shadow['store_failed']:,} left out on a store failure) by "
        f"{shadow['processes']} server process(es)"
    )
    if shadow["compared"]:
        stdout.print(
            f"  overlap with the served lists: jaccard {_num(shadow['jaccard'])}, "
            f"rbo {_num(shadow['rbo'])}"
        )
    for side in ("shadow", "served"):
        if (ms := shadow[f"{side}_latency_ms"]) is not None:
            stdout.print(f"  {side} latency: p50 {ms['p50']:.1f} ms, p99 {ms['p99']:.1f} ms")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
