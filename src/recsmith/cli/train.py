"""``recsmith train``: fit a model on events and save it as a model directory."""

from __future__ import annotations

from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from recsmith.atomic_dir import check_replaceable
from recsmith.bundle import ModelBundle
from recsmith.cli._common import (
    CliState,
    StoreOption,
    errors_as_exit,
    new_model,
    print_json,
    resolve_store_url,
    state,
    stderr,
)
from recsmith.cli._data import (
    load_catalog,
    load_events,
    load_profiles,
    model_profiles,
    require_catalog,
)
from recsmith.cli.progress import stage_progress
from recsmith.errors import ValidationError
from recsmith.evaluation.tuning import read_params_file
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.registry import MODELS, parse_params
from recsmith.monitoring.profile import data_profile
from recsmith.pipeline.artifact import save_pipeline, train_pipeline
from recsmith.pipeline.config import load_pipeline_config


class Engine(StrEnum):
    in_process = "in-process"
    spark = "spark"


def train(
    ctx: typer.Context,
    model: Annotated[str, typer.Option(help=f"Model name: {', '.join(sorted(MODELS))}.")] = "ials",
    out: Annotated[
        Path,
        typer.Option(
            help="Model directory to write: a new or empty one, or an earlier model's, replaced "
            "whole once the model is saved (a failed run leaves it as it was)."
        ),
    ] = Path("model"),
    data: Annotated[
        Path | None, typer.Option(help="Events file (CSV/JSONL/Parquet, .gz ok).")
    ] = None,
    store: StoreOption = None,
    items: Annotated[
        Path | None, typer.Option(help="Item catalogue file (for content-aware models).")
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option(
            help="User profiles file (CSV/JSONL/Parquet: user_id and properties) for a "
            "--pipeline ranker's profile features and its segment fallback (users with a profile "
            "and no events get their segments' popular items), and the two_tower model's user "
            "tower; default: the store's, when training from it."
        ),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Model parameter key=value (repeat).")
    ] = None,
    params_file: Annotated[
        Path | None,
        typer.Option(
            help="TOML file with a \\[models.MODEL] table (e.g. from `recsmith tune`); "
            "--param values override it."
        ),
    ] = None,
    pipeline: Annotated[
        Path | None,
        typer.Option(help="Pipeline TOML (e.g. examples/pipeline.toml): train every stage."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            help="Where to fit: in-process, or spark (Apache Spark, the spark extra: ials, "
            "itemknn, cooccurrence, popular, trending; --data is then a Parquet file or "
            "directory, local or on the cluster's storage). The same model directory either way."
        ),
    ] = Engine.in_process,
    spark_master: Annotated[
        str | None,
        typer.Option(
            help="Spark master URL with --engine spark (local\\[4], spark://HOST:7077, yarn); "
            "default: the one spark-submit gives, else local\\[*]."
        ),
    ] = None,
) -> None:
    """Fit a model (or a whole --pipeline) on events (a file, or the store); save it to --out.

    A pipeline also says whether its ranker was kept (and its held-out gain) or why not."""
    cli = state(ctx)
    with errors_as_exit():  # before any training: a wrong --out must not cost a run
        check_replaceable(out, "--out")
    if engine is Engine.spark:
        with errors_as_exit():
            if pipeline is not None:
                raise ValidationError("--engine", "a --pipeline trains in-process only")
            bundle = _train_on_spark(
                cli, model, param, params_file, data, store, items, spark_master
            )
            bundle.save(out)
        _report(bundle.manifest, out, json_out, cli.quiet)
        return
    if spark_master is not None:
        with errors_as_exit():
            raise ValidationError("--spark-master", "only with --engine spark")
    if pipeline is not None:
        with errors_as_exit(), stage_progress(cli) as progress:
            config = load_pipeline_config(pipeline)
            with progress("reading events"):
                events = load_events(data, store, cli.settings)
                catalog = load_catalog(items, data, store, cli.settings)
                profiles = load_profiles(users, data, store, cli.settings)
            trained = train_pipeline(
                config,
                events,
                dict(cli.settings.events.weights),
                items=catalog,
                users=profiles,
                half_life_days=cli.settings.features.half_life_days,
                progress=progress,
                source=str(data) if data is not None else resolve_store_url(store, cli.settings),
            )
            with progress(f"saving to {out}"):
                save_pipeline(trained, out)
        _report(trained.manifest, out, json_out, cli.quiet)
        return
    with errors_as_exit():
        recommender = new_model(model, parse_params(param or []), _file_params(params_file, model))
        events = load_events(data, store, cli.settings)
        catalog = load_catalog(items, data, store, cli.settings)
        require_catalog([model], catalog)
        interactions = Interactions.from_events(
            events,
            cli.settings.events.weights,
            half_life_days=cli.settings.features.half_life_days,
            catalog=ItemCatalog.from_items(catalog) if catalog else None,
            profiles=model_profiles([model], users, data, store, cli.settings),
        )
        source = str(data) if data is not None else resolve_store_url(store, cli.settings)
        with (
            stderr.status(
                f"training {model} on {interactions.matrix.nnz:,} interactions", spinner="dots"
            )
            if cli.show_progress
            else nullcontext()
        ):
            bundle = ModelBundle.train(
                interactions, recommender, source=source, data_profile=data_profile(events)
            )
        bundle.save(out)
    _report(bundle.manifest, out, json_out, cli.quiet)


def _file_params(params_file: Path | None, model: str) -> dict[str, Any]:
    return read_params_file(params_file, model) if params_file is not None else {}


def _train_on_spark(
    cli: CliState,
    model: str,
    param: list[str] | None,
    params_file: Path | None,
    data: Path | None,
    store: str | None,
    items: Path | None,
    master: str | None,
) -> ModelBundle:
    """``train --engine spark``: settings checked before Spark starts (it takes seconds), events
    from Parquet (read by Spark) or the store (read here, screened for privacy as in-process,
    then shipped to Spark), the model fitted and bundled by ``recsmith.spark``."""
    from recsmith.spark.train import check_model

    check_model(model)
    recommender = new_model(model, parse_params(param or []), _file_params(params_file, model))
    if data is not None and store is not None:
        raise ValidationError("--data", "give either --data or --store, not both")
    frame = load_events(None, store, cli.settings) if data is None else None
    catalog = load_catalog(items, data, store, cli.settings)

    from recsmith.spark import events as spark_events
    from recsmith.spark.session import spark_session
    from recsmith.spark.train import train_on_spark

    with spark_session(master) as spark:
        if frame is None:
            assert data is not None
            events, skipped = spark_events.read_parquet(spark, spark_events.data_location(data))
        else:
            events, skipped = spark_events.from_frame(spark, frame), 0
        try:
            if skipped:
                stderr.print(f"skipped {skipped} invalid row(s) in {data}")
            return train_on_spark(
                spark,
                events,
                recommender,
                cli.settings.events.weights,
                half_life_days=cli.settings.features.half_life_days,
                catalog_items=ItemCatalog.from_items(catalog).item_ids if catalog else (),
                source=spark_events.data_location(data)
                if data is not None
                else resolve_store_url(store, cli.settings),
            )
        finally:  # read_parquet's persisted rows, in a session that may outlive this command
            events.unpersist()


def _report(m: dict[str, Any], out: Path, json_out: bool, quiet: bool) -> None:
    # shown even with --quiet or --json: a typo in a rule, a model that learned nothing
    lines = [f"{w['field']}: {w['message']}" for w in m.get("rule_warnings") or []]
    lines += [f"{name}: {why}" for name, why in (m.get("fit_warnings") or {}).items()]
    for line in lines:
        stderr.print(f"warning: {line}", highlight=False, markup=False, soft_wrap=True)
    if json_out:
        print_json(m)
    elif not quiet:
        what = "pipeline" if m.get("kind") == "pipeline" else m["model"]
        stderr.print(
            f"trained [bold]{what}[/] on {m['n_users']:,} users × {m['n_items']:,} items "
            f"({m['n_interactions']:,} interactions) in {m['fit_seconds']:.2f}s → {out} "
            f"(version {m['version']})"
        )
        for line in ("calibration_summary", "ranker_summary", "ranker_features"):
            if line in m:
                stderr.print(str(m[line]), highlight=False, soft_wrap=True, markup=False)
