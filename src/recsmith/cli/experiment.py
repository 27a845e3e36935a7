"""``recsmith experiment start|stop|list|report|plan|promote``: A/B tests on live traffic.

Experiments live in the release registry (``experiments.json`` beside ``current.json``), so every
server following the registry picks a change up within a second, like a deploy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

import typer
from rich.table import Table

from recsmith.cli._common import errors_as_exit, print_json, state, stderr, stdout
from recsmith.cli.audit import audited
from recsmith.cli.releases import RegistryOpt, _registry
from recsmith.errors import ValidationError
from recsmith.experiments import stats
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.experiments.report import Thresholds, experiment_report, text_lines, write_html
from recsmith.experiments.spec import Experiment, Variant, check_name, parse_variant
from recsmith.governance.release_check import check_release

app = typer.Typer(
    help="A/B experiments between releases or model directories.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON line.")]


def _experiments(
    ctx: typer.Context, registry: Path | None, *, must_exist: bool
) -> ExperimentRegistry:
    return ExperimentRegistry(_registry(ctx, registry, must_exist=must_exist).root)


def weighted(specs: list[str]) -> list[tuple[str, str, float]]:
    """``NAME=TARGET[:WEIGHT]`` specs with every weight filled in: weights are percentages, and
    variants without one share what the others leave of 100 equally (``control=A
    treatment=B:10`` is 90/10); when every variant has one they are taken as relative."""
    parsed = [parse_variant(s) for s in specs]
    given = sum(w for _, _, w in parsed if w is not None)
    free = [n for n, _, w in parsed if w is None]
    if free and given >= 100:
        raise ValidationError("--variant", f"weights sum to {given:g}: nothing left for {free[0]}")
    share = (100 - given) / len(free) if free else 0.0
    return [(n, t, share if w is None else w) for n, t, w in parsed]


def new_experiment(
    reg: ExperimentRegistry,
    name: str,
    specs: list[str],
    unit: str = "user",
    placement: str | None = None,
    *,
    canary: bool = False,
    allocation: dict[str, Any] | None = None,
) -> Experiment:
    """Check every variant loads and answers as a server would load it (as ``deploy`` does),
    then build the experiment: releases by version, directories by absolute path.
    ``allocation``: ``Experiment``'s allocation fields (``allocation``, ``kpi``, ``min_share``,
    ``burn_in``), fixed weights when None."""
    check_name(name, "name")
    variants = []
    for vname, target, weight in weighted(specs):
        path = reg.resolve(target)
        check_release(path)
        stored = target if path.parent == reg.models.versions_dir else str(path.resolve())
        variants.append(Variant(vname, stored, weight))
    if placement is not None:
        check_name(placement, "--placement")
    return Experiment(
        name,
        tuple(variants),
        salt=f"{name}:{uuid4().hex}",
        unit=unit,  # type: ignore[arg-type]  # Experiment checks it
        placement=placement,
        canary=canary,
        **(allocation or {}),
    )


@app.command()
def start(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Experiment name (never reused).")],
    variant: Annotated[
        list[str],
        typer.Option(
            help="NAME=RELEASE_OR_DIR[:WEIGHT %], repeated; the first is the control. "
            "Unweighted variants share the rest of 100."
        ),
    ],
    unit: Annotated[str, typer.Option(help="What is split: user or session.")] = "user",
    placement: Annotated[
        str | None, typer.Option(help="Only requests with this ?placement= (default: all).")
    ] = None,
    allocation: Annotated[
        str,
        typer.Option(
            help="fixed: the weights, sticky per unit; thompson: shares learned from --kpi, "
            "drawn per request (not sticky), logged as each decision's assignment propensity."
        ),
    ] = "fixed",
    kpi: Annotated[
        str, typer.Option(help="thompson: ctr (clicks) or conversion (purchases) per impression.")
    ] = "ctr",
    min_share: Annotated[
        float, typer.Option(help="thompson: every variant's least share of requests.")
    ] = 0.05,
    burn_in: Annotated[
        int, typer.Option(help="thompson: impressions per variant served at the weights first.")
    ] = 500,
    registry: RegistryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Start an experiment; servers following the registry split traffic within a second.

    One running experiment per placement (an experiment without --placement covers all)."""
    with errors_as_exit(), audited(state(ctx).settings, "experiment.start", name) as act:
        reg = _experiments(ctx, registry, must_exist=False)
        adaptive = {"allocation": allocation, "kpi": kpi, "min_share": min_share}
        adaptive["burn_in"] = burn_in
        started = reg.start(
            new_experiment(reg, name, variant, unit, placement, allocation=adaptive)
        )
        act.detail = {"weights": started.weights, "placement": placement}
        if started.adaptive:
            act.detail["allocation"] = adaptive
    if json_out:
        print_json(started.to_json())
    elif not state(ctx).quiet:
        split = ", ".join(f"{v}={w:.0%}" for v, w in started.weights.items())
        stderr.print(f"started {name}: {split} (control: {started.control})")


@app.command()
def stop(ctx: typer.Context, name: str, registry: RegistryOpt = None) -> None:
    """Stop an experiment: its units get the deployed release again within a second."""
    with errors_as_exit(), audited(state(ctx).settings, "experiment.stop", name):
        stopped = _experiments(ctx, registry, must_exist=True).stop(name)
    if not state(ctx).quiet:
        stderr.print(f"stopped {name} at {stopped.stopped_at}")


@app.command("list")
def list_(ctx: typer.Context, registry: RegistryOpt = None, json_out: JsonOpt = False) -> None:
    """Experiments, running ones first."""
    with errors_as_exit():
        found = _experiments(ctx, registry, must_exist=True).all()
    found.sort(key=lambda e: (not e.running, e.started_at))
    if json_out:
        print_json([e.to_json() for e in found])
        return
    table = Table(title="experiments")
    for col in ("name", "status", "variants", "unit", "placement", "started", "stopped"):
        table.add_column(col)
    for e in found:
        variants = ", ".join(
            f"{v.name}={v.target} ({w:.0%})"
            for v, w in zip(e.variants, e.weights.values(), strict=True)
        )
        table.add_row(
            e.name,
            "running" if e.running else "stopped",
            variants,
            e.unit,
            e.placement or "all",
            e.started_at,
            e.stopped_at or "",
        )
    stdout.print(table)


@app.command()
def report(
    ctx: typer.Context,
    name: str,
    registry: RegistryOpt = None,
    mde: Annotated[float, typer.Option(help="Smallest relative CTR lift worth detecting.")] = 0.05,
    alpha: Annotated[float, typer.Option(help="Test level.")] = 0.05,
    revenue_margin: Annotated[
        float, typer.Option(help="Guardrail: revenue per unit may drop at most this (relative).")
    ] = 0.02,
    latency_margin: Annotated[
        float, typer.Option(help="Guardrail: p99 latency may rise at most this (relative).")
    ] = 0.10,
    error_margin: Annotated[
        float,
        typer.Option(
            min=0.0, help="Guardrail: error rate may rise at most this (absolute; 0.005 = 0.5 pp)."
        ),
    ] = 0.005,
    json_out: JsonOpt = False,
    html: Annotated[Path | None, typer.Option(help="Also write an HTML page here.")] = None,
) -> None:
    """Per variant CTR, conversion and revenue per unit with 95 % CIs; lifts with p and an
    always-valid p (look daily); sample-ratio mismatch; guardrails (revenue per unit; p99 of the
    time from a request's arrival to its list built; 5xx answers per request served); the
    verdict."""
    from recsmith.store.open import open_store

    with errors_as_exit():
        exp = _experiments(ctx, registry, must_exist=True).get(name)
        settings = state(ctx).settings
        store = open_store(settings.store.url, settings.store)
        try:
            result = experiment_report(
                store,
                exp,
                Thresholds(
                    alpha=alpha,
                    mde=mde,
                    revenue_margin=revenue_margin,
                    latency_margin=latency_margin,
                    error_margin=error_margin,
                ),
            )
        finally:
            store.close()
    if html is not None:
        write_html(result, html)
    if not json_out or not state(ctx).quiet:
        for line in text_lines(result):
            (stderr if json_out else stdout).print(line, highlight=False, soft_wrap=True)
    if json_out:
        print_json(result.to_json())


@app.command()
def plan(
    baseline_ctr: Annotated[float, typer.Option(help="Today's CTR, e.g. 0.03.")],
    mde: Annotated[float, typer.Option(help="Relative lift to detect, e.g. 0.05 for +5 %.")],
    alpha: Annotated[float, typer.Option(help="Test level (two-sided).")] = 0.05,
    power: Annotated[float, typer.Option(help="Chance to detect a true lift of --mde.")] = 0.8,
    json_out: JsonOpt = False,
) -> None:
    """Units needed per variant (each unit counted as one impression; the report re-estimates
    from the observed variance once the experiment runs)."""
    with errors_as_exit():
        n = stats.plan(baseline_ctr, mde, alpha, power)
    if json_out:
        print_json(
            {
                "units_per_variant": n,
                "baseline_ctr": baseline_ctr,
                "mde": mde,
                "alpha": alpha,
                "power": power,
            }
        )
    else:
        typer.echo(f"{n} units per variant")


@app.command()
def promote(
    ctx: typer.Context,
    name: str,
    variant: Annotated[
        str | None, typer.Option(help="The variant to deploy (default: the only treatment).")
    ] = None,
    registry: RegistryOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Deploy a variant (publishing a directory first) and stop the experiment."""
    with errors_as_exit(), audited(state(ctx).settings, "experiment.promote", name) as act:
        reg = _experiments(ctx, registry, must_exist=True)
        exp = reg.get(name)
        treatments = [v.name for v in exp.variants[1:]]
        if variant is None:
            if len(treatments) != 1:
                raise ValidationError(
                    "--variant", f"several treatments: name one of {', '.join(treatments)}"
                )
            variant = treatments[0]
        chosen = {v.name: v for v in exp.variants}.get(variant)
        if chosen is None:
            raise ValidationError("--variant", f"{name} has no variant {variant!r}")
        path = reg.resolve(chosen.target)
        check_release(path)
        version = reg.models.publish(path) if path.parent != reg.models.versions_dir else path.name
        reg.models.deploy(version)
        if exp.running:
            reg.stop(name)
        act.detail = {"variant": variant, "deployed": version}
    if json_out:
        print_json({"version": version, "experiment": name, "variant": variant})
    elif not state(ctx).quiet:
        stderr.print(f"deployed {version} ({name}/{variant}) and stopped {name}")


def start_canary(
    ctx: typer.Context,
    target: str | None,
    model_dir: Path | None,
    registry: Path | None,
    percent: float,
    *,
    json_out: bool = False,
) -> None:
    """``deploy TARGET --canary N``: publish TARGET (a release or a directory), then start
    ``canary-<version>`` with the current release as control at 100 - N % and TARGET at N %."""
    what = str(model_dir) if model_dir is not None else str(target)
    with errors_as_exit(), audited(state(ctx).settings, "experiment.start", what) as act:
        if (target is None) == (model_dir is None):
            raise ValidationError("version", "give one VERSION or directory to canary")
        if not 0 < percent < 100:
            raise ValidationError("--canary", "a percentage between 0 and 100 (exclusive)")
        reg = _experiments(ctx, registry, must_exist=False)
        current = reg.models.current()
        if current is None:
            raise ValidationError("--canary", "nothing is deployed yet: deploy a first release")
        path = reg.resolve(str(model_dir) if model_dir is not None else str(target))
        check_release(path)
        version = reg.models.publish(path)
        specs = [f"control={current}", f"canary={version}:{percent:g}"]
        started = reg.start(new_experiment(reg, f"canary-{version}", specs, canary=True))
        act.target, act.detail = started.name, {"weights": started.weights}
    if json_out:
        print_json(started.to_json())
    elif not state(ctx).quiet:
        stderr.print(
            f"canary: {version} serves {percent:g} % of users, {current} the rest "
            f"(experiment {started.name}; `recsmith experiment report {started.name}`)"
        )
