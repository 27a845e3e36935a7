"""Back up and restore the embedded SQLite store, consistent while a server writes to it.

SQLite's online backup API copies the database in one step inside a read transaction: in WAL
mode writers carry on meanwhile, and the copy is the database as of the moment the step began,
so every event acknowledged before the backup started (acknowledged = committed, with
``synchronous=FULL``) is in it, and no half-written batch is. Copying the file with ``cp`` is
not equivalent: it misses what is still in the ``-wal`` file and can catch a page mid-write.

The backup is written to a temporary file next to ``--out`` (mode 0600: it holds user data and
API key hashes), checked (``PRAGMA quick_check``),
switched to a self-contained rollback journal, flushed, and renamed into place, so ``--out``
never holds half a backup. Restore copies the backup into the store through the same API, which
takes the store's write lock, so a reader never sees half a restore.

A PostgreSQL store is backed up with PostgreSQL's own tools (``POSTGRES_HINT``).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recsmith.atomic_dir import fsync_path
from recsmith.errors import ValidationError
from recsmith.store.url_scheme import POSTGRES_PREFIXES, SQLITE_PREFIX, sqlite_file

#: Tables whose rows make a store "not empty" (what a restore would overwrite).
_DATA_TABLES = ("events", "items", "users", "api_keys", "dead_letters", "rule_sets")

POSTGRES_HINT = (
    "a PostgreSQL store is backed up with PostgreSQL's tools: "
    "pg_dump --format=custom --file FILE URL, restored with "
    "pg_restore --clean --if-exists --no-owner --dbname URL FILE (see README, Backup)"
)


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup or restore holds: rows per table and the file's size in bytes."""

    path: Path
    rows: dict[str, int]
    bytes: int


def sqlite_path(url: str, field: str) -> Path:
    """The file of a ``sqlite:///`` store URL; a PostgreSQL URL is told what to use instead."""
    if url.startswith(POSTGRES_PREFIXES):
        raise ValidationError(field, POSTGRES_HINT)
    if not url.startswith(SQLITE_PREFIX):
        raise ValidationError(field, f"not a SQLite store URL (sqlite:///path): {url!r}")
    return Path(sqlite_file(url)[0])


def backup(store: Path, out: Path, *, field: str = "--store") -> BackupSummary:
    """Copy the SQLite store ``store`` to ``out`` (see module docstring); safe while a server
    writes to ``store``. ``field``: what gave the store (``--store``, or ``store.url`` from the
    config), named in its errors."""
    if not store.is_file():
        raise FileNotFoundError(f"{field}: no SQLite store at {store}")
    out = out.resolve()
    if out in {store.resolve(), *(Path(f"{store.resolve()}{s}") for s in ("-wal", "-shm"))}:
        raise ValidationError("--out", f"{out} is the store itself: back up to another file")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        source = _open(store, field, "rw")
        try:
            target = sqlite3.connect(tmp, isolation_level=None)
            try:
                source.backup(target)  # pages=-1: one step, one consistent snapshot
                target.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
                _check(target, store, field)
                rows = _rows(target)
            finally:
                target.close()
        finally:
            source.close()
        fsync_path(tmp)
        os.replace(tmp, out)
        fsync_path(out.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupSummary(out, rows, out.stat().st_size)


def restore(
    backup_file: Path, store: Path, *, force: bool, field: str = "--store"
) -> BackupSummary:
    """Replace the contents of the SQLite store ``store`` with ``backup_file``'s. A store that
    holds anything is only overwritten with ``force``: a restore into the wrong URL must not
    wipe live data. ``field`` as for ``backup``."""
    if not backup_file.is_file():
        raise FileNotFoundError(f"FILE: no such backup: {backup_file}")
    if backup_file.resolve() == store.resolve():
        raise ValidationError(field, f"{store} is the backup itself")
    source = _open(backup_file, "FILE", "ro")
    try:
        _check(source, backup_file, "FILE")
        rows = _rows(source)
        store.parent.mkdir(parents=True, exist_ok=True)
        target = _open(store, field, "rwc")
        try:
            held = {t: n for t, n in _rows(target).items() if n}
            if held and not force:
                what = ", ".join(f"{n:,} {t}" for t, n in held.items())
                raise ValidationError(
                    "--force", f"the store {store} is not empty ({what}): give --force to replace"
                )
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")  # what the store runs in
        finally:
            target.close()
    finally:
        source.close()
    return BackupSummary(store, rows, store.stat().st_size)


def _open(path: Path, field: str, mode: str) -> sqlite3.Connection:
    """``path`` as a SQLite database, opened in ``mode`` (``ro``, ``rw``: it must exist, so a
    mistyped path never becomes a backup of nothing; ``rwc``: created if missing)."""
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30.0, isolation_level=None
        )
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise ValidationError(field, f"{path} is not a SQLite database ({exc})") from None
    return conn


def _check(conn: sqlite3.Connection, path: Path, field: str) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "events" not in tables:
        raise ValidationError(field, f"{path} is not a recsmith store (no events table)")
    status = conn.execute("PRAGMA quick_check").fetchone()[0]
    if status != "ok":
        raise ValidationError(field, f"{path} is damaged: {status}")


def _rows(conn: sqlite3.Connection) -> dict[str, int]:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {
        t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # names from _DATA_TABLES
        for t in _DATA_TABLES
        if t in tables
    }
