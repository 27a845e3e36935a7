"""``recsmith serve``: the HTTP API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsmith.bundle import read_manifest
from recsmith.cli._common import errors_as_exit, state
from recsmith.config import with_overrides
from recsmith.store.open import open_store


def serve(
    ctx: typer.Context,
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory (default: config).")
    ] = None,
    store: Annotated[str | None, typer.Option(help="Store URL (default: config).")] = None,
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
            "connections are spread over them.",
        ),
    ] = None,
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
    }
    with errors_as_exit():
        settings = with_overrides(
            cli.settings,
            serving={k: v for k, v in options.items() if v is not None},
            store={"url": store} if store else {},
        )
        # the lifespan would open it too, but a bad URL there is a startup traceback per worker;
        # opened here it is the one-line error `import --store` gives for the same URL
        open_store(settings.store.url).close()
        if settings.serving.model_dir is not None:  # likewise a missing or corrupt model
            read_manifest(settings.serving.model_dir)
        run(settings, log_level="warning" if cli.quiet else "debug" if cli.verbose else "info")
