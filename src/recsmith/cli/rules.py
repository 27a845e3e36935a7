"""``recsmith rules show | set FILE | validate FILE``: the live business rules in the store
(``recsmith.merchandising``), applied by every server within a second of ``set``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    fail,
    print_json,
    resolve_store_url,
    state,
    stderr,
    stdout,
)

if TYPE_CHECKING:  # the command imports what it uses: ``recsmith --help`` stays light
    from recsmith.merchandising.document import RuleDocument
    from recsmith.store.base import EventStore

app = typer.Typer(
    help="Live business rules: \\[\\[rerank.rules]] and \\[\\[placements.NAME.rerank.rules]] "
    "tables, applied by every server within a second, replacing the pipeline's own where set.",
    no_args_is_help=True,
)

ModelOpt = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="Release to check the rules against (default: the registry's current release, "
        "else serving.model_dir).",
    ),
]
FileArg = Annotated[
    Path, typer.Argument(help="TOML (or JSON) rule file; an empty file means the pipeline's rules.")
]


def _checked(
    ctx: typer.Context, file: Path, model: Path | None, store: str | None
) -> tuple[RuleDocument, EventStore]:
    """Parse ``file`` and check it against the release's catalogue as the store has it now;
    returns (document, opened store) and says on stderr when no release could check it, and
    each rule or value that matches no item (a warning, even with --quiet: likely a typo)."""
    from recsmith.bundle import NeedsPipeline
    from recsmith.merchandising.checking import check_offline, release_dir
    from recsmith.merchandising.document import parse_text
    from recsmith.store.open import open_store

    cli = state(ctx)
    if not file.is_file():
        raise FileNotFoundError(f"FILE: no such file: {file}")
    document = parse_text(file.read_text(), str(file))
    db = open_store(resolve_store_url(store, cli.settings))
    release = release_dir(cli.settings.serving, model)
    try:
        if release is None:
            if not cli.quiet:
                stderr.print(
                    "note: no release to check against (--model, serving.registry or "
                    "serving.model_dir): the file's syntax was checked, not its items"
                )
        else:
            for warning in check_offline(document, release, db):
                stderr.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)
    except NeedsPipeline as exc:
        db.close()
        raise fail(str(exc), 2) from None
    except BaseException:
        db.close()
        raise
    return document, db


@app.command("validate")
def validate(
    ctx: typer.Context, file: FileArg, model: ModelOpt = None, store: StoreOption = None
) -> None:
    """Check a rule file as `set` would (exit 2 naming the rule and field), storing nothing."""
    with errors_as_exit():
        _, db = _checked(ctx, file, model, store)
        db.close()
    if not state(ctx).quiet:
        stderr.print(f"{file}: valid")


@app.command("set")
def set_command(
    ctx: typer.Context, file: FileArg, model: ModelOpt = None, store: StoreOption = None
) -> None:
    """Check the file, store it as the next version (audited as rules.set) and print it."""
    from recsmith.merchandising.versions import set_rules

    with errors_as_exit():
        document, db = _checked(ctx, file, model, store)
        try:
            stored = set_rules(db, document)
        finally:
            db.close()
    if not state(ctx).quiet:
        what = "the pipeline's rules" if stored.document.empty else str(file)
        stderr.print(f"rules version {stored.version} set: {what}")
    print_json(stored.to_json())


@app.command("show")
def show(
    ctx: typer.Context,
    version: Annotated[int | None, typer.Option(help="An older version.", min=1)] = None,
    history: Annotated[bool, typer.Option("--history", help="List the versions.")] = False,
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """The current rule file (or --version N) as JSON, ready to edit and `set` again."""
    from recsmith.merchandising.versions import current_rules, rule_history, rule_version
    from recsmith.store.open import open_store

    cli = state(ctx)
    with errors_as_exit():
        db = open_store(resolve_store_url(store, cli.settings))
        try:
            shown = current_rules(db) if version is None else rule_version(db, version)
            versions = rule_history(db, 100) if history else []
        finally:
            db.close()
    if version is not None and shown is None:
        raise fail(f"--version: no rules version {version}", 2)
    if history:
        rows = [
            {**v.to_json(), "rules": None, "pipeline_rules": v.document.empty} for v in versions
        ]
        if json_out:
            print_json([{k: r[k] for k in r if k != "rules"} for r in rows])
            return
        for r in rows:
            label = "the pipeline's rules" if r["pipeline_rules"] else "rules"
            stdout.print(f"{r['version']}\t{r['set_at']}\t{r['set_by']}\t{label}")
        return
    payload = {"version": 0, "rules": {}} if shown is None else shown.to_json()
    if json_out:
        print_json(payload)
        return
    if not cli.quiet:
        who = (
            "never set: the pipeline's rules"
            if shown is None
            else (f"version {shown.version}, set by {shown.set_by} at {shown.set_at.isoformat()}")
        )
        stderr.print(who)
    stdout.print_json(json.dumps(payload["rules"]))
