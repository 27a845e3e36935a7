"""``recsmith recommend``: batch top-k lists for a file of users, written as CSV."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
import typer

from recsmith.bundle import FILL, BatchRecommendations, ModelBundle
from recsmith.cli._common import errors_as_exit, print_json, state, stderr
from recsmith.cli.out_path import check_writable, write_failed
from recsmith.cli.trained_dir import check_trained_dir
from recsmith.cli.users_file import read_users_file
from recsmith.config import Settings
from recsmith.decisions.batch import record_batch, store_exists
from recsmith.errors import ValidationError
from recsmith.features.interactions import SESSION_PREFIX
from recsmith.ids import IdMap
from recsmith.pipeline.artifact import load_artifact
from recsmith.store.open import open_store
from recsmith.store.url_scheme import SQLITE_PREFIX, sqlite_file

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


def _known_users(bundle: ModelBundle | Pipeline) -> IdMap:
    """The users ``bundle`` was trained on (a pipeline's are its model bundle's)."""
    return bundle.users if isinstance(bundle, ModelBundle) else bundle.bundle.users


def _visitor_keys(user_ids: np.ndarray, known: IdMap) -> np.ndarray:
    """Each asked id as the model knows it. Training keys an anonymous visitor's events (a
    ``session_id``, no ``user_id``) ``session:<id>``, a key nobody asking by the session id
    writes: where the model knows sessions only (a session log), an id whose ``session:`` key it
    knows is answered as that visitor (their own items left out), not as a stranger from
    popularity. Where it knows users too, user and session ids are two namespaces (both often
    plain counters): a new user 42 is not session 42's visitor, so nothing is mapped (ask
    ``session:42`` for the visitor). The rows keep the id as written."""
    unknown = np.flatnonzero(known.to_index(user_ids) < 0)
    if len(unknown) == 0 or not _sessions_only(known):
        return user_ids
    keys = np.array([SESSION_PREFIX + str(u) for u in user_ids[unknown]], dtype=object)
    visitors = known.to_index(keys) >= 0
    if not visitors.any():
        return user_ids
    out = np.asarray(user_ids, dtype=object).copy()
    out[unknown[visitors]] = keys[visitors]
    return out


def _sessions_only(known: IdMap) -> bool:
    """Whether every id the model knows is an anonymous visitor's ``session:`` key."""
    ids = known.external_ids
    return len(ids) > 0 and bool(
        np.char.startswith(np.asarray(ids, dtype=str), SESSION_PREFIX).all()
    )


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


def _profiles(bundle: Any, user_ids: np.ndarray, settings: Settings) -> list[Any] | None:
    """``profiles=`` for ``recommend``: the store's profile of each user a model with a user
    tower does not know (``ModelBundle.needs_profile``: ``import --format users``,
    ``PUT /v1/users/{id}``), as ``serve`` reads it, all read through one opening of the store
    (not one per slice of users); None for other releases, or when the configured SQLite store
    is not there (a batch run never creates one)."""
    url = settings.store.url
    if not getattr(bundle, "serves_profiles", False) or (
        url.startswith(SQLITE_PREFIX) and not Path(sqlite_file(url)[0]).is_file()
    ):
        return None
    db = open_store(url, settings.store)
    try:
        users = [db.get_user(u) if bundle.needs_profile(u) else None for u in user_ids.tolist()]
    finally:
        db.close()
    return [None if u is None else dict(u.properties) for u in users]


def recommend(
    ctx: typer.Context,
    model_dir: Annotated[Path, typer.Option(help="A directory written by `recsmith train`.")],
    users: Annotated[
        Path | None,
        typer.Option(
            help="File with one user id per line, a CSV whose header names a user column "
            "(user_id, userId, reviewerID, ...), or CSV rows without a header read by their "
            "first field where more of those are known users (a repeated id is answered once)."
        ),
    ] = None,
    sessions: Annotated[
        Path | None,
        typer.Option(
            help="CSV session_id,item_id: lists for anonymous sessions from their items (each"
            " session's rows oldest first: EASE's recency weighs the last most)."
        ),
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
    users the model does not know get the popularity fallback (a two_tower model answers those
    with a profile in the store from it, as serve does), so every listed user gets k rows,
    fewer only where fewer items are left that the user has not had (none for one who had
    them all) or a pipeline's rules and re-ranking caps allow fewer (the summary counts such
    short lists).
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
            listed = read_users_file(users, _known_users(bundle))
            user_ids, duplicates = listed.ids, listed.repeats
            rows_read = len(user_ids) + duplicates if listed.rows else 0
            profiles = _profiles(bundle, user_ids, cli.settings)
            model_ids = _visitor_keys(user_ids, _known_users(bundle))
            recs = _in_slices(
                lambda at: bundle.recommend(
                    model_ids[at], k, **({} if profiles is None else {"profiles": profiles[at]})
                ),
                user_ids,
            )
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
        # fewer than k rows: fewer items left that the user has not had, or a pipeline's rules
        # and re-ranking caps allowing fewer
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
            "were left that they had not had, or the rules and re-ranking caps allowed no more"
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
