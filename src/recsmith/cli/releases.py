"""``recsmith deploy`` / ``rollback`` / ``releases``: model versions in a registry directory.

A server started with ``serving.registry`` (or ``recsmith serve --registry``) follows the current
release and swaps models without dropping a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from recsmith.cli._common import errors_as_exit, print_json, state, stderr, stdout
from recsmith.cli.audit import audited
from recsmith.cli.trained_dir import check_trained_dir
from recsmith.errors import ValidationError
from recsmith.governance.release_check import check_release
from recsmith.governance.releases import ModelRegistry

RegistryOpt = Annotated[
    Path | None, typer.Option(help="Registry directory (default: serving.registry from config).")
]


def _registry(ctx: typer.Context, registry: Path | None, *, must_exist: bool) -> ModelRegistry:
    """The registry from --registry or the config. ``must_exist`` for commands that only read it:
    a mistyped path would otherwise list an empty registry and look like a success; ``deploy
    --model-dir`` is what creates one."""
    root = registry or state(ctx).settings.serving.registry
    if root is None:
        raise ValidationError("--registry", "give --registry or set serving.registry in config")
    if must_exist and not root.is_dir():
        raise ValidationError("--registry", f"no such registry directory: {root}")
    return ModelRegistry(root)


def deploy(
    ctx: typer.Context,
    version: Annotated[
        str | None,
        typer.Argument(help="A published version to make current (with --canary: or a directory)."),
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Publish this trained directory, then deploy it.")
    ] = None,
    registry: RegistryOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    canary: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=100,
            help="Do not deploy: start experiment canary-VERSION serving it to this % of users "
            "against the current release (VERSION may be a directory); `recsmith experiment "
            "report` says whether to promote.",
        ),
    ] = None,
) -> None:
    """Make a version current (publishing --model-dir first); servers follow within seconds.

    Refused (exit 3) when it does not load and answer as a server would load it."""
    if canary is not None:
        from recsmith.cli.experiment import start_canary

        if model_dir is not None:  # named as typed, not as the canary's variant
            with errors_as_exit():
                check_trained_dir(model_dir)
        start_canary(ctx, version, model_dir, registry, canary, json_out=json_out)
        return
    target = version or str(model_dir)
    with errors_as_exit(), audited(state(ctx).settings, "deploy", target) as act:
        if version is None and model_dir is None:
            raise ValidationError("version", "give a VERSION to deploy or a --model-dir to publish")
        if version is not None and model_dir is not None:
            raise ValidationError("version", "give a VERSION or --model-dir, not both")
        reg = _registry(ctx, registry, must_exist=model_dir is None)
        if model_dir is not None:
            check_trained_dir(model_dir)
            check_release(model_dir)
            version = reg.publish(model_dir)
        else:
            assert version is not None
            check_release(reg.path(version))
        previous = reg.current()
        reg.deploy(version)
        act.target, act.detail = version, {"previous": previous}
    if json_out:
        print_json({"version": version, "previous": previous})
    elif not state(ctx).quiet:
        stderr.print(f"deployed {version} (was {previous or 'nothing'})")


def rollback(
    ctx: typer.Context,
    registry: RegistryOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Go back to the version deployed before the current one (refused, exit 3, if it no
    longer loads)."""
    with errors_as_exit(), audited(state(ctx).settings, "rollback") as act:
        reg = _registry(ctx, registry, must_exist=True)
        target = reg.previous()
        if target is not None:  # (with none, rollback says so)
            check_release(reg.path(target))
        previous = reg.current()
        version = reg.rollback()
        act.target, act.detail = version, {"previous": previous}
    if json_out:
        print_json({"version": version, "previous": previous})
    elif not state(ctx).quiet:
        stderr.print(f"rolled back to {version} (was {previous})")


def releases(ctx: typer.Context, registry: RegistryOpt = None) -> None:
    """List published versions; the current one is marked."""
    with errors_as_exit():
        found = _registry(ctx, registry, must_exist=True).releases()
    table = Table(title="releases")
    for col in ("", "version", "kind", "created"):
        table.add_column(col)
    for r in found:
        table.add_row("*" if r.current else "", r.version, r.kind, r.created_at)
    stdout.print(table)
