"""Events for ``train`` and ``evaluate``: from a file (validated on the way in) or from a store."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from recsmith.cli._common import resolve_store_url, stderr
from recsmith.config import Settings, StoreSettings
from recsmith.errors import ValidationError
from recsmith.evaluation.report import redact
from recsmith.events.importers.base import FORMATS, read_source
from recsmith.events.schema import Item, User
from recsmith.events.validate import validate_events, validate_items, validate_users
from recsmith.models.registry import model_class
from recsmith.privacy.identity import with_aliases
from recsmith.privacy.screen import without_refused
from recsmith.store.open import open_store
from recsmith.store.url_scheme import SQLITE_PREFIX, sqlite_file

#: The data-set formats ``import`` reads (every one but the plain ``events`` and ``items``).
DATASET_FORMATS = [name for name in FORMATS if name not in {"events", "items"}]


def load_events(data: Path | None, store_url: str | None, settings: Settings) -> pd.DataFrame:
    """A canonical event frame. Bad rows of a file are skipped with a count on stderr, never
    fatal."""
    if data is not None and store_url is not None:
        raise ValidationError("--data", "give either --data or --store, not both")
    if data is not None:
        if not data.exists():
            raise FileNotFoundError(f"--data: no such file: {data}")
        try:
            events = _file_events(data, settings)
        except ValidationError as exc:  # a file in a data set's own layout, or a directory
            raise ValidationError("--data", f"{exc.reason}. {_import_hint(data)}") from None
        if events.empty:
            raise ValidationError("--data", f"no valid events in {data} to learn from")
        return events
    return _store_events(store_url, settings)


def _file_events(data: Path, settings: Settings) -> pd.DataFrame:
    frames, rejected, total = [], 0, 0
    for chunk in read_source("events", data).events:
        valid, bad = validate_events(chunk.rows, settings.events, offset=chunk.offset)
        frames.append(valid)
        bad = [*chunk.rejections, *bad]
        if bad and rejected == 0:
            stderr.print(
                f"skipping invalid rows; first: record {bad[0].index + 1}: {bad[0].reason}"
            )
        rejected += len(bad)
        total += len(chunk)
    if rejected:
        stderr.print(f"skipped {rejected} invalid row(s) of {total} in {data}")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _import_hint(data: Path) -> str:
    """Where a file ``--data`` cannot read should go instead: ``import`` knows the public data
    sets' layouts (MovieLens' ``u.data`` has no header and tab-separated columns), ``--data``
    only the events layout."""
    directory = data if data.is_dir() else data.parent
    return (
        "--data reads an events file (CSV/JSONL/Parquet with user_id, item_id, timestamp "
        "columns); load a data set in its own layout into the store first, e.g. "
        f"`recsmith import --format movielens {directory}` (formats: "
        f"{', '.join(DATASET_FORMATS)}; `recsmith import --help`), then train with --store"
    )


def _store_events(store_url: str | None, settings: Settings) -> pd.DataFrame:
    """Every stored event; an empty or missing store names the store it read and how it was
    chosen, since with no --store that is the config's (or the default) URL, which the user
    may not know was used."""
    url = resolve_store_url(store_url, settings)
    path = Path(sqlite_file(url)[0]) if url.startswith(SQLITE_PREFIX) else None
    chunks: list[pd.DataFrame] = []
    if path is None or path.exists():  # reading must not create an empty SQLite file
        store = open_store(url)
        try:
            # visitors' events count as the users they became; erased people never return
            chunks = list(without_refused(store, with_aliases(store, store.scan())))
        finally:
            store.close()
    if chunks:
        return pd.concat(chunks, ignore_index=True)
    shown = redact(url) + (f" ({path.resolve()})" if path is not None else "")
    if store_url:
        raise ValidationError(
            "--store",
            f"no events to learn from in {shown}: load some with "
            f"`recsmith import FILE --store {redact(url)}`",
        )
    default = url == StoreSettings.model_fields["url"].default
    source = "the default store" if default else "the store.url of the config"
    raise ValidationError(
        "--store",
        f"no events to learn from in {shown}, {source} (read as no --data or --store was given): "
        "load some with `recsmith import FILE`, or give --data FILE, --store URL"
        + (", or -c the recsmith.toml that names your store" if default else ""),
    )


def load_catalog(
    items: Path | None, data: Path | None, store_url: str | None, settings: Settings
) -> list[Item]:
    """Item metadata for content-aware models: the ``--items`` file, else the store's catalogue
    when events come from a store. Empty when there is none: models that need it say so."""
    catalog: list[Item] = []
    if items is not None:
        if not items.exists():
            raise FileNotFoundError(f"--items: no such file: {items}")
        for chunk in read_source("items", items).items:
            good, _ = validate_items(chunk.rows, offset=chunk.offset)
            catalog.extend(good)
    elif data is None:
        store = open_store(resolve_store_url(store_url, settings))
        try:
            catalog = store.items()
        finally:
            store.close()
    return catalog


def load_profiles(
    users: Path | None, data: Path | None, store_url: str | None, settings: Settings
) -> list[User]:
    """User profiles for the ranker's profile features: the ``--users`` file, else the store's
    profiles when events come from a store (``import --format users``, ``PUT /v1/users/{id}``)."""
    if users is not None:
        if not users.exists():
            raise FileNotFoundError(f"--users: no such file: {users}")
        found: list[User] = []
        for chunk in read_source("users", users).users:
            found.extend(validate_users(chunk.rows, offset=chunk.offset)[0])
        return found
    if data is not None:
        return []
    store = open_store(resolve_store_url(store_url, settings))
    try:
        return store.users()
    finally:
        store.close()


def model_profiles(
    models: Collection[str],
    users: Path | None,
    data: Path | None,
    store_url: str | None,
    settings: Settings,
) -> dict[str, dict[str, Any]] | None:
    """User id → properties for ``Interactions.profiles`` when one of ``models`` fits on them
    (``uses_profiles``), else None: a model that ignores profiles never fails on their source."""
    if not any(model_class(m).uses_profiles for m in models):
        return None
    return profiles_by_id(users, data, store_url, settings)


def profiles_by_id(
    users: Path | None, data: Path | None, store_url: str | None, settings: Settings
) -> dict[str, dict[str, Any]]:
    """``load_profiles`` as ``Interactions.from_events`` takes them: user id → properties."""
    return {u.user_id: dict(u.properties) for u in load_profiles(users, data, store_url, settings)}


#: Models that learn from item metadata alone, so cannot fit without a catalogue.
NEEDS_CATALOG = frozenset({"content"})


def require_catalog(models: Collection[str], catalog: list[Item]) -> None:
    """Fail as a usage error, before any fitting, when a model that needs item metadata has none:
    the model's own check fires mid-run as a bare ValueError that does not name the option."""
    needing = sorted(NEEDS_CATALOG.intersection(models))
    if needing and not catalog:
        raise ValidationError(
            "--items",
            f"the {', '.join(needing)} model needs item metadata: give --items FILE "
            "(or read events from a --store that holds the item catalogue)",
        )
