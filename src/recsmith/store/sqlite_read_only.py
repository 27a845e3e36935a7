"""Opening a SQLite store that may not be written: a copy taken from production, a file mounted
read-only, or one opened with ``sqlite:///path?mode=ro``.

Why a mode of its own: every writable open creates missing tables and adds missing columns (the
schema step), and sets WAL mode; each is a write, so a file that cannot be written could not even
be read. Read-only, nothing is created: the file's schema is compared with the one this version
builds (``schema_gaps``) and an older one is refused by name, since reading it would fail later on
a missing column, or return less than is there. A write on such a store fails with a line naming
the file (``write_refused``), not SQLite's "attempt to write a readonly database".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from recsmith import __version__
from recsmith.errors import StoreUnavailable

#: what ``SQLiteStore`` says of a store named read-only (``?mode=ro``)
ASKED = "opened with ?mode=ro"
#: SQLite's primary codes for "this file cannot be written / opened for writing"
_REFUSALS = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)


def refused_by_sqlite(path: Path, exc: sqlite3.Error) -> str | None:
    """Why an existing ``path`` falls back to read-only after SQLite refused to open it for
    writing (``exc``), or None when ``exc`` is some other failure (or there is no file to read).
    Permissions are not consulted: SQLite writes a WAL file in a directory the process cannot
    write when its ``-wal`` and ``-shm`` already exist, and root writes anything."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in _REFUSALS or not path.is_file():
        return None
    return f"SQLite cannot write it: {exc}"


def probe_write(conn: sqlite3.Connection) -> None:
    """Raise SQLite's refusal when ``conn`` cannot write, changing nothing either way. A 0444 file
    in a writable directory opens, reads and even takes the WAL write lock; only a page write is
    refused, so one is tried (the version number set to itself) and rolled back. It takes the
    write lock, so it is run only where the file's mode says SQLite may refuse: the mode decides
    whether to ask, SQLite's answer decides the store."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"PRAGMA user_version = {int(version)}")
    finally:
        conn.execute("ROLLBACK")


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that can only read ``path``. ``mode=ro`` reads a WAL file's log through its
    ``-shm`` file, which SQLite must create when it is missing (a clean copy has none): in a
    directory it cannot write that fails, and then, when there is no ``-wal`` whose commits would
    be missed, the file is opened ``immutable`` (nothing else can be writing it there either).
    SQLite opens both read-only in its own pager, so a write on either fails with
    SQLITE_READONLY (which the store words as ``write_refused``) with no ``PRAGMA query_only``:
    even an immutable file the process may write is not written."""
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite store at {path} (opened read-only: nothing is created)")
    uri = f"file:{quote(str(path.resolve()))}"
    conn = sqlite3.connect(
        f"{uri}?mode=ro", uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        if Path(f"{path}-wal").exists():
            raise StoreUnavailable(
                f"cannot read SQLite store {path}: its write-ahead log {path}-wal needs a "
                f"{path}-shm file that cannot be created read-only ({exc}); copy the -wal and "
                "-shm files with it, or open it once where it can be written",
                str(exc),
            ) from exc
        conn = sqlite3.connect(
            f"{uri}?immutable=1",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    return conn


def _columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {
        name: {row[1] for row in conn.execute(f"PRAGMA table_info({name})")} for (name,) in tables
    }


def schema_gaps(conn: sqlite3.Connection, build: Callable[[sqlite3.Connection], None]) -> list[str]:
    """What the file on ``conn`` lacks of the schema ``build`` makes (run on an empty in-memory
    database, so the list of tables and columns is never written out twice), plus tables this
    version moved away from: missing indexes are not gaps (reads work without them)."""
    fresh = sqlite3.connect(":memory:", isolation_level=None)
    try:
        build(fresh)
        wanted = _columns(fresh)
    finally:
        fresh.close()
    have = _columns(conn)
    gaps = [f"table {name}" for name in wanted if name not in have]
    gaps += [
        f"column {name}.{column}"
        for name, columns in wanted.items()
        if name in have
        for column in sorted(columns - have[name])
    ]
    gaps += [f"old table {name}" for name in have if name == "decision_items"]
    return gaps


def refuse_old_schema(path: Path, gaps: list[str]) -> StoreUnavailable:
    """The error for a read-only store whose schema is older than this version reads."""
    return StoreUnavailable(
        f"SQLite store {path} was written by an older recsmith and needs upgrading for recsmith "
        f"{__version__} (missing: {', '.join(gaps)}); opened read-only, so nothing was changed: "
        "open it once with write access (any recsmith command without ?mode=ro upgrades it)",
        "schema older than this version",
    )


def write_refused(path: Path, reason: str) -> str:
    """What a write on a read-only store says (``reason``: ``ASKED`` or ``refused_by_sqlite``'s)."""
    return f"{path} is open read-only ({reason}): this command writes to it; run it on a copy"
