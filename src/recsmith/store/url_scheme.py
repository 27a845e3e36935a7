"""Which store URLs can be opened, checked where the URL is read rather than where it is used.

A URL can come from a command's ``--store``, the config's ``store.url`` or ``RECSMITH_STORE__URL``;
the check lives here, apart from ``open_store``, so each of those places can refuse a bad one under
the name the user typed (the option, or the config key) instead of every command saying
``store.url`` for an option it was never given. No imports from ``recsmith.config``, which uses it.
"""

from __future__ import annotations

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def store_url_problem(url: str) -> str | None:
    """Why ``url`` names no store backend, or None when its scheme is one ``open_store`` opens."""
    if url.startswith((SQLITE_PREFIX, *POSTGRES_PREFIXES)):
        return None
    return f"unsupported scheme in {url!r} (sqlite:/// or postgresql://)"
