"""``recsmith tune``: search a model's hyper-parameters on a validation split of the train part.

The best parameters go to a TOML params file that ``recsmith train --params-file`` reads. The test
part of the split is never looked at while searching; ``--report-test`` scores the winner on it
once, at the end, which is the honest number to quote (and must not steer another round of tuning).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from recsmith.cli._common import (
    CliState,
    StoreOption,
    errors_as_exit,
    known_model,
    state,
    stderr,
    stdout,
)
from recsmith.cli._data import load_catalog, load_events, model_profiles, require_catalog
from recsmith.evaluation import tuning
from recsmith.evaluation.split import parse_split


@contextmanager
def _progress(
    cli: CliState, model: str, trials: int
) -> Iterator[Callable[[int, float, float], None] | None]:
    """A rich progress bar on stderr with the best score so far; nothing when quiet or piped."""
    if not cli.show_progress:
        yield None
        return
    columns = (
        TextColumn("tuning {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(model, total=trials, best="-")
        yield lambda _n, _value, best: bar.update(task, advance=1, best=f"{best:.4f}")


def tune(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option(help=f"Model to tune: {', '.join(sorted(tuning.SEARCH_SPACES))}.")
    ],
    trials: Annotated[int, typer.Option(min=1, help="Number of optuna trials.")] = 20,
    data: Annotated[
        Path | None, typer.Option(help="Events file (default: the configured store).")
    ] = None,
    store: StoreOption = None,
    items: Annotated[
        Path | None, typer.Option(help="Item catalogue file (for content-aware models).")
    ] = None,
    split: Annotated[
        str,
        typer.Option(help="Outer split; trials use a validation split carved from its train part."),
    ] = "temporal:0.9",
    k: Annotated[int, typer.Option(min=1, max=1000, help="List length.")] = 10,
    metric: Annotated[str, typer.Option(help="Metric@k to maximise.")] = "ndcg",
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler (same seed, same run).")] = 0,
    out: Annotated[
        Path, typer.Option(help="TOML params file to write (\\[models.MODEL]); updated if present.")
    ] = Path("recsmith.tuned.toml"),
    report_test: Annotated[
        bool,
        typer.Option(
            "--report-test",
            help="At the end, score the best params once on the untouched test part (the honest "
            "last step; do not tune further on that number).",
        ),
    ] = False,
) -> None:
    """Find good hyper-parameters for --model and write them for `recsmith train --params-file`."""
    cli = state(ctx)
    with errors_as_exit():
        tuning.search_space(known_model(model))  # nothing to tune: fail before reading data
        spec = parse_split(split, "--split")
        events = load_events(data, store, cli.settings)
        catalog = load_catalog(items, data, store, cli.settings)
        require_catalog([model], catalog)
        options = {
            "half_life_days": cli.settings.features.half_life_days,
            "items": catalog,
            "profiles": model_profiles([model], None, data, store, cli.settings),
        }
        with _progress(cli, model, trials) as on_trial:
            result = tuning.tune_model(
                events,
                model,
                spec,
                cli.settings.events.weights,
                n_trials=trials,
                k=k,
                metric=metric,
                seed=seed,
                on_trial=on_trial,
                **options,
            )
        tuning.write_params_file(out, result, trials, seed)
    table = Table(title=f"best {model} params ({trials} trials, seed {seed})")
    table.add_column("param", style="bold")
    table.add_column("value", justify="right")
    for key, value in result.best_params.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    stdout.print(table)
    stdout.print(
        f"best validation {metric}@{k}: {result.best_value:.4f} "
        f"({result.validation}, {result.evaluated_users:,} users)"
    )
    if not cli.quiet:
        stderr.print(
            f"params written to {out}; use: recsmith train --model {model} --params-file {out}",
            soft_wrap=True,
        )
    if report_test:
        with errors_as_exit():
            score = tuning.holdout_score(
                events,
                model,
                result.best_params,
                spec,
                cli.settings.events.weights,
                k=k,
                metric=metric,
                **options,
            )
        stdout.print(f"test {metric}@{k} of the best params ({spec.name}): {score:.4f}")
