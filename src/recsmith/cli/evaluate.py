"""``recsmith evaluate``: compare models on a leak-free split with the serving code path."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    known_model,
    resolve_store_url,
    state,
    stderr,
    stdout,
)
from recsmith.cli._data import (
    load_catalog,
    load_events,
    model_profiles,
    profiles_by_id,
    require_catalog,
)
from recsmith.cli.ope import estimator_names, replay_command
from recsmith.cli.out_path import check_writable
from recsmith.cli.progress import stage_progress
from recsmith.config import Settings
from recsmith.errors import ValidationError
from recsmith.evaluation.debias import DEBIASED, Debias, parse_debias
from recsmith.evaluation.grouping import parse_group_spec
from recsmith.evaluation.report import (
    events_fingerprint,
    interaction_head_share,
    require_matplotlib,
    write_report,
)
from recsmith.evaluation.runner import Comparison, ModelResult, compare_to_best, evaluate_models
from recsmith.evaluation.split import parse_split
from recsmith.evaluation.verdict import Verdict, judge, users_needed_text
from recsmith.json_text import finite_or_null
from recsmith.models.registry import ParamError, create, parse_params
from recsmith.ope.estimators import check_estimators
from recsmith.pipeline.config import load_pipeline_config
from recsmith.store.open import open_store

COLUMNS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def results_table(results: list[ModelResult], k: int, title: str) -> Table:
    """The metric table as rich renders it (also used by quickstart)."""
    table = Table(title=title)
    table.add_column("model", style="bold")
    for name in COLUMNS:
        table.add_column(f"{name}@{k}", justify="right")
    table.add_column(f"coverage@{k}", justify="right")
    table.add_column("fit s", justify="right")
    best = {c: max(r.metrics[c] for r in results) for c in COLUMNS}
    for r in results:
        cells = [
            f"[green]{r.metrics[c]:.4f}[/]" if r.metrics[c] == best[c] else f"{r.metrics[c]:.4f}"
            for c in COLUMNS
        ]
        table.add_row(r.model, *cells, f"{r.coverage:.4f}", f"{r.fit_seconds:.2f}")
    return table


def debiased_table(results: list[ModelResult], k: int, debiasing: Debias) -> Table:
    """Exposure-debiased NDCG and recall per model, beside the plain NDCG they correct."""
    table = Table(title=f"debiased @{k} (--debias {debiasing.label}: weight 1/p per test item)")
    table.add_column("model", style="bold")
    for name in ("ndcg", *DEBIASED):
        table.add_column(f"{name}@{k}", justify="right")
    for r in results:
        table.add_row(r.model, *(f"{r.metrics[c]:.4f}" for c in ("ndcg", *DEBIASED)))
    return table


BEYOND = ("diversity", "novelty", "avg_popularity", "popularity_lift", "personalisation")


def beyond_table(results: list[ModelResult], k: int) -> Table:
    """Beyond-accuracy means per model, and the share of slots on head (top-20%) items."""
    table = Table(title=f"beyond accuracy @{k}")
    table.add_column("model", style="bold")
    for name in BEYOND:
        table.add_column(name, justify="right")
    table.add_column("head share", justify="right")
    for r in results:
        table.add_row(r.model, *(f"{r.beyond[c]:.4f}" for c in BEYOND), f"{r.head_share:.3f}")
    return table


def fairness_table(results: list[ModelResult], k: int) -> Table:
    """Exposure spread, miscalibration and the best- vs worst-served user group per model."""
    by = next((r.groups.by for r in results if r.groups is not None), "activity")
    table = Table(title=f"fairness @{k}: exposure, calibration, parity of ndcg@{k} by {by}")
    table.add_column("model", style="bold")
    for col in ("exposure gini", "entropy bits", "gini pos-wtd", "shown", "miscalibration"):
        table.add_column(col, justify="right")
    table.add_column("ndcg by group", justify="left")
    table.add_column("gap [95% CI]", justify="right")
    for r in results:
        b = r.beyond
        cells = [
            f"{b['exposure_gini']:.4f}",
            f"{b['exposure_entropy']:.2f}",
            f"{b['exposure_gini_weighted']:.4f}",
            f"{b['catalogue_shown']:.4f}",
            f"{b['miscalibration']:.4f}",
        ]
        g = r.groups
        groups = (
            " ".join(f"{escape(s.name)} {s.metrics['ndcg']:.4f} (n={s.users})" for s in g.groups)
            if g is not None
            else "—"
        )
        gap = (
            f"{g.gap:+.4f} [{g.gap_ci_low:+.4f}, {g.gap_ci_high:+.4f}]"
            if g is not None and g.best is not None
            else "—"
        )
        table.add_row(r.model, *cells, groups, gap)
    return table


def print_parity_notes(results: list[ModelResult]) -> None:
    """Say when a group parity result is too weak to read (small groups, undecided gap)."""
    for r in results:
        if r.groups is not None and r.groups.note:
            stdout.print(
                f"[bold yellow]note:[/] {escape(r.model)}: {escape(r.groups.note)}", soft_wrap=True
            )


def significance_table(comparisons: list[Comparison], k: int) -> Table:
    """The best model against each other one: paired difference, its 95% CI, p-values and the
    users a test would need to detect that difference (``paired_sample_size``)."""
    metric = comparisons[0].metric if comparisons else "ndcg"  # ndcg_debiased with --debias
    table = Table(title=f"paired t-test on per-user {metric}@{k} (Holm-corrected)")
    for col in ("best", "vs", f"Δ {metric}", "95% CI", "p", "p (Holm)", "users needed"):
        table.add_column(col, justify="right" if col not in ("best", "vs") else "left")
    for c in comparisons:
        table.add_row(
            c.best,
            c.model,
            f"{c.mean_diff:+.4f}",
            f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}]",
            f"{c.p_value:.2g}",
            f"{c.p_holm:.2g}",
            users_needed_text(c),
        )
    return table


def print_verdict(verdict: Verdict) -> None:
    """The warning (when the users were too few to separate the models) and the plain verdict,
    after the tables on stdout, where whoever reads the numbers reads them (also quickstart)."""
    if verdict.warning is not None:
        stdout.print(f"[bold yellow]warning:[/] {escape(verdict.warning)}", soft_wrap=True)
    stdout.print(f"[bold]verdict:[/] {escape(verdict.text)}", soft_wrap=True)


@contextmanager
def split_named_as_typed() -> Iterator[None]:
    """The library's ``split`` refusal (a split that leaves no test user a past) named as the
    option the user typed, ``--split``."""
    try:
        yield
    except ValidationError as exc:
        if exc.field != "split":
            raise
        raise ValidationError("--split", exc.reason) from None


def load_profiles(
    events: pd.DataFrame, data: Path | None, store_url: str | None, settings: Settings
) -> dict[str, dict[str, Any]]:
    """User-profile properties of the users in ``events``, from the store (``--groups
    property:NAME``). Profiles live only in a store, so an events file alone cannot give them."""
    if data is not None:
        raise ValidationError(
            "--groups",
            "user properties come from the store's user profiles: read events with --store "
            "(or from the configured store) instead of --data",
        )
    store = open_store(resolve_store_url(store_url, settings))
    try:
        users = pd.unique(events["user_id"].dropna().to_numpy(dtype=object))
        found = (store.get_user(str(u)) for u in users)  # one lookup per user: I/O, not maths
        return {p.user_id: dict(p.properties) for p in found if p is not None}
    finally:
        store.close()


def evaluate(
    ctx: typer.Context,
    data: Annotated[
        Path | None, typer.Option(help="Events file (default: the configured store).")
    ] = None,
    store: StoreOption = None,
    items: Annotated[
        Path | None, typer.Option(help="Item catalogue file (for content-aware models).")
    ] = None,
    pipeline: Annotated[
        Path | None,
        typer.Option(help="Also evaluate this pipeline TOML, exactly as it would serve."),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            help="temporal[:Q] (global time cut), leave-last-out[:N], random[:F] or "
            "user-holdout[:F], e.g. random:0.2."
        ),
    ] = "temporal:0.9",
    models: Annotated[
        str, typer.Option(help="Comma-separated model names.")
    ] = "popular,itemknn,ials",
    k: Annotated[int, typer.Option(min=1, max=1000, help="List length.")] = 10,
    param: Annotated[
        list[str] | None, typer.Option(help="model.key=value, e.g. ials.factors=128 (repeat).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write results as JSON here.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Also write a self-contained HTML report (tables, metric@k curves, trade-off and "
            "popularity-bias plots) here; needs recsmith\\[report].",
        ),
    ] = None,
    groups: Annotated[
        str,
        typer.Option(
            "--groups",
            help="User groups for accuracy parity: activity (light/medium/heavy terciles of "
            "training items) or property:NAME (a user-profile property, read from the store).",
        ),
    ] = "activity",
    item_groups: Annotated[
        str,
        typer.Option(
            help="Item groups for exposure and calibration: category or property:NAME "
            "(a catalogue property, e.g. property:brand).",
        ),
    ] = "category",
    decisions: Annotated[
        bool,
        typer.Option(
            "--decisions",
            help="Off-policy instead: estimate the trained pipeline or model directory given as "
            "--pipeline on the decision log's lists (the same as `recsmith ope replay`).",
        ),
    ] = False,
    ope: Annotated[
        str,
        typer.Option(help="With --decisions: comma-separated estimators (ips,snips,dm,dr,…)."),
    ] = "ips,snips,dr",
    since: Annotated[
        str, typer.Option(help="With --decisions: start of the window (7d, 12h or a date-time).")
    ] = "30d",
    debias: Annotated[
        str | None,
        typer.Option(
            metavar="popularity[:ETA]",
            help="Also score exposure-debiased NDCG and recall: each test interaction weighted "
            "by 1/p, p = (item's training users / the most popular item's) ^ ETA (default "
            "0.5; 0 = no debiasing); the paired tests and the verdict then use debiased NDCG.",
        ),
    ] = None,
) -> None:
    """Print precision/recall/NDCG/MAP/hit rate/MRR/coverage @k and fit time per model.

    Then beyond-accuracy and fairness tables (exposure Gini/entropy, miscalibration, ndcg by user
    group and the best-worst gap), paired tests against the best and a verdict, warning when too
    few users were evaluated. With --decisions, off-policy estimates of a trained candidate on
    the decision log instead (`recsmith ope replay`)."""
    if decisions:
        with errors_as_exit():
            if pipeline is None:
                raise ValidationError(
                    "--pipeline", "with --decisions, name a trained pipeline or model directory"
                )
            check_estimators(estimator_names(ope), "--ope")
        replay_command(ctx, pipeline=pipeline, since=since, estimators=ope, store=store)
        return
    cli = state(ctx)
    with errors_as_exit():
        names = [m.strip() for m in models.split(",") if m.strip()]
        if not names:
            raise ValidationError("--models", "name at least one model")
        for name in names:
            known_model(name, "--models")
        per_model: dict[str, dict[str, str]] = {}
        for key, value in parse_params(param or []).items():
            model, dot, field = key.partition(".")
            if not dot or model not in names:
                raise ValidationError(
                    "--param", f"{key!r}: expected MODEL.KEY with MODEL in --models"
                )
            if not field:
                raise ValidationError(
                    "--param", f"{key!r}: no KEY after the dot (expected MODEL.KEY=VALUE)"
                )
            per_model.setdefault(model, {})[field] = value
        for model, fields in per_model.items():  # refused now, not after the data is read
            try:
                create(model, **fields)
            except ParamError as exc:
                raise ValidationError("--param", f"{model}.{exc.param}: {exc.problem}") from None
        if json_out is not None:
            check_writable(json_out, "--json")
        if report is not None and report.is_dir():  # a missing folder is made (``write_report``)
            raise ValidationError("--report", f"{report} is a directory, not a file")
        spec = parse_split(split, "--split")
        debiasing = parse_debias(debias) if debias is not None else None
        user_spec = parse_group_spec(groups, "--groups", "activity")
        item_spec = parse_group_spec(item_groups, "--item-groups", "category")
        if report is not None:
            require_matplotlib()  # fail before the long part, not after it
        config = load_pipeline_config(pipeline) if pipeline is not None else None
        with stage_progress(cli) as progress:
            with progress("reading events"):
                events = load_events(data, store, cli.settings)
                catalog = load_catalog(items, data, store, cli.settings)
                profiles = (
                    load_profiles(events, data, store, cli.settings)
                    if user_spec.kind == "property"
                    else model_profiles(names, None, data, store, cli.settings)
                )
                if config is not None and profiles is None:
                    # the pipeline fits on the store's profiles, as train --pipeline and retrain
                    profiles = profiles_by_id(None, data, store, cli.settings)
            require_catalog(names, catalog)
            parts = spec.apply(events)
            with split_named_as_typed():
                results, stats = evaluate_models(
                    events,
                    parts,
                    names,
                    k,
                    cli.settings.events.weights,
                    half_life_days=cli.settings.features.half_life_days,
                    params=per_model,
                    items=catalog,
                    pipeline=config,
                    curve_k=max(k, 20) if report is not None else 0,
                    progress=progress,
                    item_groups=item_spec,
                    user_groups=user_spec,
                    profiles=profiles,
                    debias=debiasing,
                )
    title = (
        f"{spec.name} split: {stats['train_events']:,} train / {stats['test_events']:,} test "
        f"events, {stats['evaluated_users']:,} users evaluated"
    )
    comparisons = compare_to_best(results, "ndcg_debiased" if debiasing else "ndcg")
    verdict = judge(
        comparisons,
        evaluated_users=stats["evaluated_users"],
        users_in_data=stats["users_in_data"],
        split=spec.name,
        k=k,
    )
    stdout.print(results_table(results, k, title))
    stdout.print(beyond_table(results, k))
    stdout.print(fairness_table(results, k))
    print_parity_notes(results)
    if debiasing is not None:
        stdout.print(debiased_table(results, k, debiasing))
    if comparisons:
        stdout.print(significance_table(comparisons, k))
    print_verdict(verdict)
    if json_out is not None:
        payload = {
            "split": spec.name,
            "k": k,
            "debias": debiasing.label if debiasing else None,
            "data": str(data or resolve_store_url(store, cli.settings)),
            "stats": stats,
            "results": [
                {
                    "model": r.model,
                    "params": r.params,
                    "metrics": r.metrics,
                    "coverage": r.coverage,
                    "beyond": r.beyond,
                    "head_share": r.head_share,
                    "exposure_groups": {
                        "by": item_spec.label,
                        "groups": [asdict(g) for g in r.exposure.groups] if r.exposure else [],
                    },
                    "groups": r.groups.to_json() if r.groups is not None else None,
                    "fit_seconds": r.fit_seconds,
                    "recommend_seconds": r.recommend_seconds,
                }
                for r in results
            ],
            "comparisons": [asdict(c) for c in comparisons],
            "verdict": asdict(verdict),
        }
        json_out.write_text(json.dumps(finite_or_null(payload), indent=2) + "\n")
        if not cli.quiet:
            stderr.print(f"results written to {json_out}")
    if report is not None:
        with errors_as_exit():
            write_report(
                report,
                results=results,
                comparisons=comparisons,
                verdict=verdict,
                stats={
                    **stats,
                    "interaction_head_share": interaction_head_share(parts.train, stats["items"]),
                },
                k=k,
                split=spec.name,
                command=shlex.join(["recsmith", *sys.argv[1:]]),
                data_fingerprint=events_fingerprint(events),
                data_source=str(data or resolve_store_url(store, cli.settings)),
            )
        if not cli.quiet:
            stderr.print(f"report written to {report}", soft_wrap=True)
