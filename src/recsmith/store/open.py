"""Open a store from its URL: ``sqlite:///path`` (embedded default; ``sqlite:///path?mode=ro`` to
read it only) or ``postgresql://…``."""

from __future__ import annotations

from recsmith.config import StoreSettings
from recsmith.errors import ValidationError
from recsmith.store.base import EventStore
from recsmith.store.dead_letters import DAY_S, DeadLetterPolicy
from recsmith.store.url_scheme import SQLITE_PREFIX, sqlite_file, store_url_problem


def open_store(url: str, settings: StoreSettings | None = None) -> EventStore:
    """The backend named by the URL's scheme; heavy drivers are imported only when asked for.
    ``settings`` give its dead-letter policy (processes that write dead letters pass them; the
    defaults otherwise)."""
    problem = store_url_problem(url)
    if problem is not None:  # reached only by callers that did not check where the URL came in
        raise ValidationError("store.url", problem)
    policy = dead_letter_policy(settings or StoreSettings())
    if url.startswith(SQLITE_PREFIX):
        from recsmith.store.sqlite import SQLiteStore

        path, read_only = sqlite_file(url)
        return SQLiteStore(path, policy, read_only=read_only)
    from recsmith.store.postgres import PostgresStore

    return PostgresStore(url, policy)


def dead_letter_policy(settings: StoreSettings) -> DeadLetterPolicy:
    """The ``[store]`` dead-letter settings as the stores take them."""
    return DeadLetterPolicy(
        max_payload_bytes=settings.dead_letter_max_bytes,
        retention_s=settings.dead_letter_retention_days * DAY_S,
    )
