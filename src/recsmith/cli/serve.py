"""``recsmith serve``: the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from recsmith.cli._common import StoreOption, errors_as_exit, state, stderr
from recsmith.cli.serve_checks import ALLOW_FLAG, check_model, check_port
from recsmith.config import with_overrides
from recsmith.store.open import open_store


def serve(
    ctx: typer.Context,
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory (default: config).")
    ] = None,
    store: StoreOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: config).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: config).")] = None,
    registry: Annotated[
        Path | None,
        typer.Option(
            help="Serve the registry's current release, follow deploys (a release that does not "
            "load is reported on /health/ready; the last one that does keeps serving)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Server processes (default: config); on Linux each listens on the port, so "
            "connections are spread over them, and a worker two or more keep-alive connections "
            "ahead of another closes one after a response so the reconnect evens the split out "
            "(serving.balance_connections).",
        ),
    ] = None,
    allow_no_model: Annotated[
        bool,
        typer.Option(
            ALLOW_FLAG,
            help="Start even without a trained model, to collect events before the first "
            "training (recommendations answer 503 until then); without it, serve refuses.",
        ),
    ] = False,
) -> None:
    """Serve recommendations, ingestion and health over HTTP (OpenAPI at /docs)."""
    from recsmith.serving.app import run

    cli = state(ctx)
    options = {
        "model_dir": model_dir,
        "registry": registry,
        "host": host,
        "port": port,
        "workers": workers,
        "allow_no_model": allow_no_model or None,
    }
    with errors_as_exit():
        given = {k: v for k, v in options.items() if v is not None}
        # an option's bad value is named as typed (``--port``), a config file's as set there
        flags = {f"serving.{k}": f"--{k.replace('_', '-')}" for k in given}
        settings = with_overrides(
            cli.settings,
            {**flags, "store.url": "--store"} if store else flags,
            serving=given,
            store={"url": store} if store else {},
        )
        # a missing or corrupt model and a taken port are refused before the store is opened:
        # opening a SQLite store creates it, and a command that refuses creates nothing
        warning = check_model(settings.serving)
        check_port(settings.serving.host, settings.serving.port)
        # the lifespan would open it too, but a bad URL there is a startup traceback per worker;
        # opened here it is the one-line error `import --store` gives for the same URL
        open_store(settings.store.url).close()
        if warning is not None:  # even under -q: this server will not recommend
            stderr.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
        run(settings, log_level="warning" if cli.quiet else "debug" if cli.verbose else "info")
