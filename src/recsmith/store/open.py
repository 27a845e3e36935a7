"""Open a store from its URL: ``sqlite:///path`` (embedded default) or ``postgresql://…``."""

from __future__ import annotations

from recsmith.errors import ValidationError
from recsmith.store.base import EventStore


def open_store(url: str) -> EventStore:
    """The backend named by the URL's scheme; heavy drivers are imported only when asked for."""
    if url.startswith("sqlite:///"):
        from recsmith.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from recsmith.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValidationError(
        "store.url", f"unsupported scheme in {url!r} (sqlite:/// or postgresql://)"
    )
