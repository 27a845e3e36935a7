"""Open a store from its URL: ``sqlite:///path`` (embedded default) or ``postgresql://…``."""

from __future__ import annotations

from recsmith.config import StoreSettings
from recsmith.errors import ValidationError
from recsmith.store.base import EventStore
from recsmith.store.dead_letters import DAY_S, DeadLetterPolicy


def open_store(url: str, settings: StoreSettings | None = None) -> EventStore:
    """The backend named by the URL's scheme; heavy drivers are imported only when asked for.
    ``settings`` give its dead-letter policy (processes that write dead letters pass them; the
    defaults otherwise)."""
    policy = dead_letter_policy(settings or StoreSettings())
    if url.startswith("sqlite:///"):
        from recsmith.store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"), policy)
    if url.startswith(("postgresql://", "postgres://")):
        from recsmith.store.postgres import PostgresStore

        return PostgresStore(url, policy)
    raise ValidationError(
        "store.url", f"unsupported scheme in {url!r} (sqlite:/// or postgresql://)"
    )


def dead_letter_policy(settings: StoreSettings) -> DeadLetterPolicy:
    """The ``[store]`` dead-letter settings as the stores take them."""
    return DeadLetterPolicy(
        max_payload_bytes=settings.dead_letter_max_bytes,
        retention_s=settings.dead_letter_retention_days * DAY_S,
    )
