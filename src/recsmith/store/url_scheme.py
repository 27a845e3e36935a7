"""Which store URLs can be opened, checked before ``open_store`` where the URL's name is known.

A URL can come from a command's ``--store``, the config's ``store.url`` or ``RECSMITH_STORE__URL``;
the check lives here, apart from ``open_store``, so each of those places can refuse a bad one under
the name the user typed (``--store`` as the option is read; the config key where a command
resolves its store, so commands that open none still run) instead of every command saying
``store.url`` for an option it was never given. No imports from ``recsmith.config``.
"""

from __future__ import annotations

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")
#: What ends a SQLite URL that opens its file read-only (``sqlite:///copy.sqlite?mode=ro``): for a
#: copy that must stay as it is, and for a file that is read-only anyway (root may write to it).
READ_ONLY_SUFFIX = "?mode=ro"


def sqlite_file(url: str) -> tuple[str, bool]:
    """The file a ``sqlite:///`` URL names, and whether it asks for read-only (``READ_ONLY_SUFFIX``;
    any other ``?`` stays part of the file name, as it always was)."""
    path = url.removeprefix(SQLITE_PREFIX)
    if path.endswith(READ_ONLY_SUFFIX):
        return path.removesuffix(READ_ONLY_SUFFIX), True
    return path, False


def store_url_problem(url: str) -> str | None:
    """Why ``url`` names no store backend, or None when its scheme is one ``open_store`` opens."""
    if url.startswith((SQLITE_PREFIX, *POSTGRES_PREFIXES)):
        return None
    return f"unsupported scheme in {url!r} (sqlite:/// or postgresql://)"
