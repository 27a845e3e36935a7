"""``recsmith recommend``: batch top-k lists for a file of users, written as CSV."""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import pandas as pd
import typer

from recsmith.bundle import FILL, BatchRecommendations, ModelBundle
from recsmith.cli._common import errors_as_exit, print_json, state, stderr
from recsmith.cli.out_path import check_writable, write_failed
from recsmith.cli.trained_dir import check_trained_dir
from recsmith.decisions.batch import record_batch, store_exists
from recsmith.errors import ValidationError
from recsmith.ids import IdMap
from recsmith.pipeline.artifact import load_artifact
from recsmith.store.open import open_store

if TYPE_CHECKING:
    from recsmith.pipeline.runtime import Pipeline

#: Users (or sessions) answered per call: a pipeline holds every candidate's features for the
#: whole call (2.2 GB peak for 22,000 users at once, BENCHMARKS §156), so a file is answered in
#: slices of this many, each user's list the same (it depends on that user alone).
SLICE = 2048


def _in_slices(
    answer: Callable[[slice], BatchRecommendations], ids: np.ndarray
) -> BatchRecommendations:
    """``answer`` over ``ids`` ``SLICE`` at a time, joined into one batch in ``ids`` order."""
    parts = [answer(slice(at, at + SLICE)) for at in range(0, max(len(ids), 1), SLICE)]
    if len(parts) == 1:
        return parts[0]
    return BatchRecommendations(
        ids,
        [row for part in parts for row in part.item_ids],
        [row for part in parts for row in part.scores],
        np.concatenate([part.fallback for part in parts]),
        [row for part in parts for row in part.sources],
    )


def read_user_ids(path: Path) -> tuple[np.ndarray, int]:
    """The users a ``--users`` file lists, each once in the order first listed, and how many
    repeated lines were dropped (a user listed twice would otherwise get its rows, and its
    decision, twice).

    One id per line, the whole line (an id may hold a comma), or a line written as one quoted
    CSV field (``"u,1"``, as a CSV writer quotes such an id); or, where the first line is a CSV
    header naming a ``user_id`` column, that column of the CSV (a test split saved with its
    other columns). A UTF-8 BOM is dropped: read as part of the first id it made that user
    unknown, answered by popularity with its own seen items listed. Blank lines are skipped and
    an id's surrounding spaces dropped; leading zeros and other characters are kept as written."""
    if not path.is_file():
        raise FileNotFoundError(f"--users: no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("--users", f"{path} is not UTF-8 text ({exc.reason})") from None
    lines = text.splitlines()
    delimiter = max((",", ";", "\t"), key=lines[0].count) if lines else ","
    header = [name.strip() for name in next(csv.reader(lines[:1], delimiter=delimiter), [])]
    if "user_id" in header:
        column = header.index("user_id")
        rows = csv.reader(lines[1:], delimiter=delimiter)
        ids = [row[column].strip() if len(row) > column else "" for row in rows]
    else:
        ids = [_unquoted(line.strip()) for line in lines]
    listed = np.asarray([i for i in ids if i], dtype=object)
    unique = pd.unique(listed)
    return np.asarray(unique, dtype=object), len(listed) - len(unique)


def _unquoted(line: str) -> str:
    """A line that is one quoted CSV field (``"u,1"``; a quote inside doubled) as that field;
    any other line as it is."""
    if len(line) < 2 or line[0] != '"' or line[-1] != '"':
        return line
    fields = next(csv.reader([line]))
    return fields[0] if len(fields) == 1 else line


def first_fields_where_known(ids: np.ndarray, known: IdMap) -> tuple[np.ndarray, int, int]:
    """``ids`` with each line no user holds read as a headerless CSV row where its first
    comma-separated field is a known user (a test split saved without its header, ``u1,i9,4``:
    read whole, every row was an unknown user answered by popularity); how many lines were so
    read, and how many more repeats that made (``u1,i9`` and ``u1,i3``: one user). A line
    that is a known user as a whole (an id holding a comma) stays whole."""
    comma = np.fromiter(("," in i for i in ids), bool, len(ids))
    rows = np.flatnonzero(comma & (known.to_index(ids) < 0))
    if len(rows) == 0:
        return ids, 0, 0
    first = np.asarray([next(csv.reader([ids[r]]))[0].strip() for r in rows], dtype=object)
    found = known.to_index(first) >= 0
    if not found.any():
        return ids, 0, 0
    read = ids.copy()
    read[rows[found]] = first[found]
    unique = pd.unique(read)
    return np.asarray(unique, dtype=object), int(found.sum()), len(read) - len(unique)


def _known_users(bundle: ModelBundle | Pipeline) -> IdMap:
    """The users ``bundle`` was trained on (a pipeline's are its model bundle's)."""
    return bundle.users if isinstance(bundle, ModelBundle) else bundle.bundle.users


def read_sessions(path: Path) -> tuple[np.ndarray, list[list[str]]]:
    """A CSV of ``session_id,item_id`` rows (in order) → session ids and their item lists.

    Whatever pandas cannot read (not UTF-8, empty, malformed) is a usage error naming the option,
    not a pandas traceback."""
    if not path.is_file():
        raise FileNotFoundError(f"--sessions: no such file: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("--sessions", f"{path} is not UTF-8 text ({exc.reason})") from None
    except pd.errors.EmptyDataError:
        raise ValidationError("--sessions", f"{path} is empty") from None
    except pd.errors.ParserError as exc:
        raise ValidationError("--sessions", f"{path} is not valid CSV: {exc}") from None
    if not {"session_id", "item_id"} <= set(frame.columns):
        raise ValidationError("--sessions", "needs a header with session_id,item_id")
    grouped = frame.groupby("session_id", sort=False)["item_id"].agg(list)
    return grouped.index.to_numpy(dtype=object), list(grouped)


def recommend(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Option(help="A directory written by `recsmith train`.")],
    users: Annotated[
        Path | None,
        typer.Option(
            help="File with one user id per line, or a CSV with a user_id column (a "
            "repeated id is answered once)."
        ),
    ] = None,
    sessions: Annotated[
        Path | None,
        typer.Option(help="CSV session_id,item_id: lists for anonymous sessions from their items."),
    ] = None,
    k: Annotated[int, typer.Option(min=1, max=10_000, help="Items per user.")] = 10,
    out: Annotated[
        Path | None,
        typer.Option(help="CSV to write (Parquet when it ends .parquet; default: stdout)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary line.")] = False,
    log_decisions: Annotated[
        bool | None,
        typer.Option(
            "--log-decisions/--no-log-decisions",
            help="Record each list in the decision log (route batch) and add a "
            "recommendation_id column. Default: when the decision log is enabled and the "
            "configured store exists (a SQLite file is never created for this).",
        ),
    ] = None,
) -> None:
    """Write batch lists as CSV: user_id,item_id,rank,score,sources (rank 1 = best).

    sources names who proposed the item (|-separated): the model, a pipeline's sources, or
    "popular" for the popularity fallback; a recommendation_id column is added when the lists
    are recorded in the decision log. Items a user had in the training data are never listed;
    users the model does not know get the popularity fallback, so every listed user gets k rows,
    fewer only where fewer items are left that the user has not had (none for one who had
    them all; the summary counts such short lists).
    Where the model has too few items for a user (item-kNN and EASE list only items the user's
    history points to) popularity fills the rest, scored below the model's items. With
    --sessions the first column is session_id and lists come from each session's items
    (models such as sknn, itemknn, ease).
    """
    cli = state(ctx)
    duplicates = rows_read = 0
    with errors_as_exit():
        if (users is None) == (sessions is None):
            raise ValidationError("--users", "give exactly one of --users or --sessions")
        if out is not None:  # before any list is answered or recorded in the decision log
            check_writable(out)
        check_trained_dir(model_dir)
        bundle = load_artifact(model_dir)
        if sessions is not None:
            user_ids, histories = read_sessions(sessions)
            recs = _in_slices(lambda at: bundle.recommend_for_items(histories[at], k), user_ids)
            key = "session_id"
        else:
            assert users is not None
            user_ids, duplicates = read_user_ids(users)
            user_ids, rows_read, more = first_fields_where_known(user_ids, _known_users(bundle))
            duplicates += more
            recs = _in_slices(lambda at: bundle.recommend(user_ids[at], k), user_ids)
            key = "user_id"
        if len(user_ids) == 0:
            raise ValidationError(f"--{key.split('_')[0]}s", "lists no ids")
        lengths = np.fromiter((len(x) for x in recs.item_ids), dtype=np.int64, count=len(user_ids))
        frame = pd.DataFrame(
            {
                key: np.repeat(user_ids, lengths),
                "item_id": np.concatenate(recs.item_ids) if len(recs.item_ids) else [],
                "rank": np.concatenate([np.arange(1, n + 1) for n in lengths]),
                "score": np.concatenate(recs.scores),
                "sources": ["|".join(names) for row in recs.sources for names in row],
            }
        )
        settings = cli.settings
        if log_decisions is None:
            log_decisions = settings.decisions.enabled and store_exists(settings.store.url)
        if log_decisions:
            db = open_store(settings.store.url, settings.store)
            try:
                ids = record_batch(
                    db,
                    recs,
                    user_ids,
                    unit_kind="session" if sessions is not None else "user",
                    release=bundle.version,
                )
            finally:
                db.close()
            frame["recommendation_id"] = np.repeat(np.asarray(ids, dtype=object), lengths)
        try:
            _write(frame, out)
        except OSError as exc:
            if out is None:
                raise
            raise write_failed(out, exc) from None
    summary = {
        "decisions_logged": bool(log_decisions),
        "users": len(user_ids),
        "rows": len(frame),
        "fallback_users": int(recs.fallback.sum()),
        **_popular_known(frame, lengths, np.asarray(recs.fallback, bool), _fills_alone(bundle)),
        # fewer than k rows: only where fewer items are left that the user has not had
        "short_users": int(np.count_nonzero(lengths < k)),
        "duplicate_users": duplicates,
        # headerless CSV rows whose first field, not the whole line, is a known user
        "lines_read_as_rows": rows_read,
        "model_version": bundle.version,
    }
    # a pipeline with profile segments answered the profiled ones from their segments
    segmented = (
        ", within their profile segments where known" if getattr(bundle, "segments", None) else ""
    )
    if json_out:
        print_json(summary)
    elif not cli.quiet and out is not None:
        skipped = (
            f"; {duplicates:,} duplicate user{'s' if duplicates > 1 else ''} skipped"
            if duplicates
            else ""
        )
        only = summary["popular_only_users"]
        part = summary["popular_filled_users"]
        weak = (
            f"; {only:,} known user{'s' if only > 1 else ''} got only popular items: the model "
            "found nothing for them"
            if only
            else ""
        ) + (
            f"; {part:,} known user{'s' if part > 1 else ''} got popular items below the "
            "model's: it found too few for them"
            if part
            else ""
        )
        short = summary["short_users"]
        weak += (
            f"; {short:,} user{'s' if short > 1 else ''} got fewer than {k:,} items: no more "
            "were left that they had not had"
            if short
            else ""
        )
        if rows_read:
            skipped += (
                f"; {rows_read:,} line{'s' if rows_read > 1 else ''} read as CSV rows: the user "
                "is the first field"
            )
        stderr.print(
            f"wrote {summary['rows']:,} rows for {summary['users']:,} users to {out} "
            f"({summary['fallback_users']:,} unknown users got popular items{segmented}{weak}"
            f"{skipped})"
        )


def _fills_alone(bundle: object) -> bool:
    """Whether ``FILL`` rows are the popularity fallback's alone: not where the model is the
    popularity model, whose own items carry the same name, so its known users were counted as
    ones "the model found nothing for"."""
    return not (isinstance(bundle, ModelBundle) and bundle.model.name == FILL)


def _popular_known(
    frame: pd.DataFrame, lengths: np.ndarray, unknown: np.ndarray, fills_alone: bool
) -> dict[str, int]:
    """How many known users (``unknown`` false; ``lengths``: each user's rows, in order) got
    no item from the model, only popularity fill (``popular_only_users``; not one with no row
    at all, who had every item: that is a short list, not popularity's), and how many got
    some of both (``popular_filled_users``). The summary counted unknown users alone as
    fallbacks, so a model that scored nothing for anyone (item-kNN or EASE on users whose items
    share no co-occurrence) read as a clean run: "0 unknown users got popular items" over lists
    that were popularity throughout. Neither where the model is popularity (``fills_alone``
    false): its items are the model's own."""
    if not fills_alone:
        return {"popular_only_users": 0, "popular_filled_users": 0}
    owner = np.repeat(np.arange(len(lengths)), lengths)
    model_rows = (frame["sources"] != FILL).to_numpy()
    per_user = np.bincount(owner, weights=model_rows, minlength=len(lengths))
    return {
        "popular_only_users": int(np.count_nonzero(~unknown & (per_user == 0) & (lengths > 0))),
        "popular_filled_users": int(
            np.count_nonzero(~unknown & (per_user > 0) & (per_user < lengths))
        ),
    }


def _write(frame: pd.DataFrame, out: Path | None) -> None:
    """``frame`` as CSV to ``out`` (stdout without one), or as Parquet when ``out`` ends
    ``.parquet``: ``--out recs.parquet`` had written CSV under that name, which no Parquet
    reader opens ("magic bytes not found"), and ``import`` reads Parquet, so writing it is
    what the name asks for."""
    if out is not None and out.suffix.lower() == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out if out is not None else sys.stdout, index=False, float_format="%.6g")
