"""``recsmith quickstart``: from nothing to a served, evaluated recommender in one command.

Creates ``./recsmith-data/`` (SQLite store + ``recsmith.toml``), fills it from the simulator or a
real data set, evaluates the default multi-stage pipeline beside single models on a temporal split
(what is served, next to what it is built from), trains that pipeline on everything, creates an
API key and serves the API through the pipeline, printing what to curl.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from recsmith.cli._common import errors_as_exit, state, stderr, stdout
from recsmith.cli._data import load_catalog, load_events, load_profiles
from recsmith.cli.evaluate import print_verdict, results_table
from recsmith.cli.import_ import run_import
from recsmith.cli.progress import stage_progress
from recsmith.cli.serve_checks import check_port
from recsmith.config import ServingSettings, Settings, load_settings, with_overrides
from recsmith.evaluation.runner import compare_to_best, evaluate_models
from recsmith.evaluation.split import parse_split
from recsmith.evaluation.verdict import judge
from recsmith.pipeline.artifact import save_pipeline, train_pipeline
from recsmith.pipeline.config import default_pipeline_config
from recsmith.simulate import simulate
from recsmith.store.ingest import ingest_events, ingest_items
from recsmith.store.open import open_store

MODELS = ("popular", "itemknn", "ials", "ease")
SPLIT = "temporal:0.9"
DEFAULT_PORT: int = ServingSettings.model_fields["port"].default


def write_config(directory: Path, port: int) -> Path:
    """A commented ``recsmith.toml`` pointing at the quickstart store and model.

    An existing file is left as it is (it may have been edited); ``quickstart`` applies its
    ``--port`` on top of it instead."""
    path = directory / "recsmith.toml"
    if not path.exists():
        path.write_text(
            "# Written by `recsmith quickstart`; see recsmith.example.toml for every option.\n"
            "[store]\n"
            f'url = "sqlite:///{(directory / "recsmith.sqlite").resolve()}"\n\n'
            "[serving]\n"
            f'model_dir = "{(directory / "model").resolve()}"\n'
            'host = "127.0.0.1"\n'
            f"port = {port}\n"
        )
    return path


def command_name() -> str:
    """How this shell calls recsmith again: ``recsmith`` where it is on the PATH, else the script
    beside this interpreter (the README installs into ``.venv`` without activating it, so a bare
    ``recsmith`` line pasted from here would answer "command not found")."""
    if shutil.which("recsmith"):
        return "recsmith"
    beside = Path(sys.executable).parent / "recsmith"
    return shlex.quote(str(beside)) if beside.is_file() else "recsmith"


def follow_ups(config: Path, model_dir: Path, port_flag: str) -> str:
    """The commands to go on with, each with ``-c CONFIG``: the quickstart's config lives in its
    directory, so a bare ``recsmith serve`` from here would find no ``./recsmith.toml`` and
    serve nothing (and ``import`` would fill the default store instead of this one). The
    ``evaluate`` line compares what quickstart compared (its models, split and the pipeline it
    serves), so it reproduces quickstart's table and goes on from there."""
    pipeline = shlex.quote(str(resources.files("recsmith.pipeline").joinpath("default.toml")))
    c = f"{command_name()} -c {shlex.quote(str(config))}"
    compared = f"--models {','.join(MODELS)} --pipeline {pipeline} --split {SPLIT}"
    steps = (
        ("serve it (again)", f"{c} serve{port_flag}"),
        (
            "add your own events (CSV/JSONL/Parquet, or --format movielens DIR)",
            f"{c} import events.csv",
        ),
        (
            "compare the models and the served pipeline again, on what the store holds",
            f"{c} evaluate {compared}",
        ),
        (
            "retrain the served pipeline (then restart serve)",
            f"{c} train --pipeline {pipeline} --out {shlex.quote(str(model_dir))}",
        ),
        ("a key for your application", f"{c} keys create --name my-app --scopes read,ingest"),
    )
    return "".join(f"  # {what}\n  {command}\n" for what, command in steps)


def load_simulation(settings: Settings, seed: int) -> str:
    """Ingest the simulated shop into the configured store; returns a one-line summary."""
    sim = simulate(seed=seed)
    store = open_store(settings.store.url)
    try:
        items = ingest_items(store, sim.items, source="simulator")
        events = ingest_events(store, sim.events, settings.events, source="simulator")
    finally:
        store.close()
    return (
        f"simulated shop: {events.accepted:,} new events ({events.duplicates:,} already stored), "
        f"{items.accepted:,} items"
    )


def quickstart(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to keep data, config and model.")
    ] = Path("recsmith-data"),
    dataset: Annotated[
        Path | None, typer.Option(help="Import this data set instead of simulating.")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="Importer for --dataset.")] = "movielens",
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 0,
    port: Annotated[
        int | None,
        typer.Option(
            help=f"Port to serve on (default: the existing config's, else {DEFAULT_PORT})."
        ),
    ] = None,
    serve: Annotated[bool, typer.Option(help="Serve the API when set-up is done.")] = True,
) -> None:
    """Set up a store, data, evaluated models, the default pipeline and an API key; serve it."""
    cli = state(ctx)
    started = time.perf_counter()
    with errors_as_exit():
        requested = {"port": port} if port is not None else {}
        # a bad --port fails here, before it is written into a new config file
        with_overrides(Settings.model_construct(), {"serving.port": "--port"}, serving=requested)
        directory.mkdir(parents=True, exist_ok=True)
        config_path = write_config(directory, DEFAULT_PORT if port is None else port)
        # --port wins over the file: a re-run with another port serves (and prints) that one
        configured = load_settings(config_path)
        settings = with_overrides(configured, serving=requested)
        if serve:  # a taken port is said now, not after minutes of set-up
            check_port(settings.serving.host, settings.serving.port)
        if dataset is None:
            summary = load_simulation(settings, seed)
        else:
            result = run_import(
                format,
                dataset,
                settings.store.url,
                settings=settings,
                progress=cli.show_progress,
            )
            summary = f"imported {dataset}: " + ", ".join(
                f"{v:,} {k}" for k, v in result.as_counts().items()
            )
        stderr.print(f"[bold]1/4[/] {summary} → {settings.store.url}")

        events = load_events(None, settings.store.url, settings)
        items = load_catalog(None, None, settings.store.url, settings)
        # the store's user profiles, as train --pipeline and evaluate --pipeline fit on them
        users = load_profiles(None, None, settings.store.url, settings)
        split = parse_split(SPLIT)
        # what is served (the pipeline) is evaluated beside the single models it is built from
        with stage_progress(cli) as progress:
            results, stats = evaluate_models(
                events,
                split,
                MODELS,
                10,
                settings.events.weights,
                half_life_days=settings.features.half_life_days,
                items=items,
                pipeline=default_pipeline_config(),
                progress=progress,
                profiles={u.user_id: dict(u.properties) for u in users},
            )
        stdout.print(
            results_table(
                results,
                10,
                f"2/4 {split.name} split, {stats['evaluated_users']:,} of "
                f"{stats['users_in_data']:,} users evaluated",
            )
        )
        print_verdict(
            judge(
                compare_to_best(results),
                evaluated_users=stats["evaluated_users"],
                users_in_data=stats["users_in_data"],
                split=split.name,
                k=10,
            )
        )
        model_dir = settings.serving.model_dir or directory / "model"
        with stage_progress(cli) as progress:
            served = train_pipeline(
                default_pipeline_config(),
                events,
                dict(settings.events.weights),
                items=items,
                users=users,
                half_life_days=settings.features.half_life_days,
                progress=progress,
                source=settings.store.url,
            )
        save_pipeline(served, model_dir)
        stderr.print(
            f"[bold]3/4[/] trained the default pipeline on all {len(events):,} events → "
            f"{model_dir}; {served.manifest['ranker_summary']}"
        )
        sample = served.bundle.users.external_ids[:3]
        lists = served.recommend(sample, 5).item_ids
        for user, listed in zip(sample, lists, strict=True):
            stdout.print(f"    {user}: {', '.join(np.asarray(listed, dtype=str))}")
        # the example event names an item of this data set: one recommended to that user above
        example_item = str(lists[0][0]) if len(lists[0]) else served.bundle.items.external_ids[0]

        from recsmith.governance.keys import create_api_key

        store = open_store(settings.store.url)
        try:
            _, secret = create_api_key(store, "quickstart", ["admin"])
        finally:
            store.close()
    stderr.print(f"[bold]4/4[/] set-up done in {time.perf_counter() - started:.1f}s")
    base = f"http://127.0.0.1:{settings.serving.port}"  # what run(settings) below listens on
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    overridden = (
        f" (--port {settings.serving.port} overrides its port {configured.serving.port})"
        if settings.serving.port != configured.serving.port
        else ""
    )
    stdout.print(
        f"\nAPI key (admin, shown once): {secret}\n"
        f"Config: {config_path}{overridden}\n\nTry:\n"
        f'  curl -H "Authorization: Bearer {secret}" '
        f"{shlex.quote(f'{base}/v1/users/{sample[0]}/recommendations?k=5')}\n"
        f'  curl -H "Authorization: Bearer {secret}" {shlex.quote(f"{base}/v1/popular?k=5")}\n'
        f'  curl -X POST -H "Authorization: Bearer {secret}" -H "Content-Type: application/json" '
        f'{base}/v1/events -d \'[{{"user_id": "{sample[0]}", "item_id": "{example_item}", '
        f'"event_type": "view", "timestamp": "{now}"}}]\'\n'
        f"  # the API's interactive docs, in a browser: {base}/docs\n",
        highlight=False,
        soft_wrap=True,  # a curl command cut in two cannot be pasted
    )
    port_flag = f" --port {settings.serving.port}" if overridden else ""
    # the config holds the absolute path; the one under --dir reads as the user wrote it
    written = directory / "model"
    shown_model_dir = written if model_dir == written.resolve() else model_dir
    stdout.print(
        "Next, from this directory (-c names this set-up's config; without it recsmith reads "
        f"./recsmith.toml):\n{follow_ups(config_path, shown_model_dir, port_flag)}",
        highlight=False,
        soft_wrap=True,
    )
    if serve:
        from recsmith.serving.app import run

        with errors_as_exit():
            run(settings)
