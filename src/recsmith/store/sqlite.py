"""SQLite backend: the embedded default. One file, WAL, created on first use, nothing to install.

Durability: ``synchronous=FULL`` makes a committed ``append`` survive a crash of the process (and of
the machine). Each thread gets its own connection, so readers in the server's thread pool never wait
for one another; writers are serialised by SQLite itself (``busy_timeout``). Group commits also
take turns through ``writer_turn``: a ``flock`` on ``<file>-writer`` wakes the next process the
moment the last commit ends, where SQLite's busy handler sleeps 1, 2, 5, 10 … ms between tries, and
the kernel drops the lock of a process that dies holding it. A full disk, an I/O
error, a read-only file or a lock held past the timeout raise ``StoreUnavailable``
(``store.outage``); tables that disappeared are created again.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import datetime
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import pandas as pd

from recsmith.decisions import rows
from recsmith.decisions.record import Decision
from recsmith.errors import StoreUnavailable
from recsmith.events.latest import Signal
from recsmith.events.schema import EVENT_COLUMNS, Item, Rejection, User
from recsmith.exploration import arm_rows, linear_rows
from recsmith.exploration.arms import ArmCounts
from recsmith.governance.audit import (
    AUDIT_COLUMNS,
    AuditRecord,
    audit_from_row,
    audit_row,
    scan_audit_query,
)
from recsmith.merchandising import rows as rule_rows
from recsmith.monitoring import feature_rows
from recsmith.privacy.marks import Mark
from recsmith.privacy.naming import names_person, search_texts
from recsmith.store import append_rows, packed_items
from recsmith.store.base import (
    API_KEY_COLUMNS,
    DEFERRED_EVENT_INDEXES,
    ApiKey,
    AppendResult,
    DeadLetter,
    api_key_from_row,
    api_key_row,
    appended,
    dead_letter_from_row,
    dead_letter_query,
    dead_letter_summary_queries,
    event_rows,
    events_per_minute_query,
    first_of_each_id,
    frame_from_rows,
    ids_in,
    indexes_deferred,
    item_from_row,
    item_row,
    micros,
    scan_bounds,
    user_id_list,
)
from recsmith.store.dead_letters import DeadLetterPolicy, PruneClock, dead_letter_rows
from recsmith.store.erasure_sql import (
    ALIAS_MAP_SQL,
    ALIAS_SCHEMA,
    MARK_COLUMNS,
    aliases_of_sql,
    dead_letter_candidates_sql,
    events_before_sql,
    link_alias_in,
    mark_from_row,
    mark_row,
    person_decisions_sql,
    person_queries,
    unlink_alias_sql,
    upsert_mark_sql,
)
from recsmith.store.outage import Outage, guarded, guarded_iter
from recsmith.store.sqlite_read_only import (
    ASKED,
    connect_read_only,
    probe_write,
    refuse_old_schema,
    refused_by_sqlite,
    schema_gaps,
    write_refused,
)
from recsmith.store.user_items_sql import items_in_time_order, weighs_above_zero

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    user_id TEXT,
    session_id TEXT,
    item_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    value REAL,
    ts INTEGER NOT NULL,
    context TEXT,
    received_at INTEGER NOT NULL,
    recommendation_id TEXT,
    position INTEGER
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
-- covering index: a user's items are read from the index alone (one per recommendation request)
DROP INDEX IF EXISTS events_user;
CREATE INDEX IF NOT EXISTS events_user_item ON events (user_id, item_id);
-- an anonymous visitor's events (``base.DEFERRED_EVENT_INDEXES``); every open creates what is
-- missing, so a store written by an older version gets it (and ``dead_letters_source``) here
CREATE INDEX IF NOT EXISTS events_visitor ON events (session_id) WHERE user_id IS NULL;
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT PRIMARY KEY,
    categories TEXT NOT NULL,
    tags TEXT NOT NULL,
    text TEXT,
    properties TEXT NOT NULL,
    available INTEGER NOT NULL,
    created_at INTEGER,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS items_updated ON items (updated_at);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    properties TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    source TEXT NOT NULL,
    record_index INTEGER NOT NULL,
    errors TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at);
-- a redelivered stream message: was it dead-lettered already (``dead_letter_sources``)?
CREATE INDEX IF NOT EXISTS dead_letters_source ON dead_letters (source);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
-- one row, rewritten by readiness probes: proves the store still takes writes
CREATE TABLE IF NOT EXISTS heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
"""
#: The decision log (``recsmith.decisions``); created after the events columns it needs exist.
_DECISION_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    recommendation_id TEXT PRIMARY KEY,
    served_at INTEGER NOT NULL,
    unit TEXT,
    unit_kind TEXT NOT NULL,
    route TEXT NOT NULL,
    placement TEXT,
    release TEXT NOT NULL,
    experiment TEXT,
    variant TEXT,
    latency_ms REAL,
    page_view TEXT,
    size INTEGER NOT NULL,
    -- the shown items, packed (``decisions.rows.pack_items``); a list is one row (§88)
    items TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_served ON decisions (served_at);
-- capping's per-request read and the window rule: a unit's lists in a time range
CREATE INDEX IF NOT EXISTS decisions_unit_served ON decisions (unit, served_at);
CREATE TABLE IF NOT EXISTS attributions (
    event_id TEXT PRIMARY KEY,
    recommendation_id TEXT NOT NULL,
    position INTEGER,
    rule TEXT NOT NULL,
    event_type TEXT NOT NULL,
    value REAL,
    ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attributions_decision ON attributions (recommendation_id);
CREATE INDEX IF NOT EXISTS attributions_ts ON attributions (ts);
CREATE TABLE IF NOT EXISTS experiment_requests (
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    minute INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    PRIMARY KEY (experiment, variant, minute)
) WITHOUT ROWID;
-- exploration's shared bandit counts (``recsmith.exploration.board``)
CREATE TABLE IF NOT EXISTS bandit_arms (
    arm TEXT PRIMARY KEY,
    shown INTEGER NOT NULL,
    clicks INTEGER NOT NULL,
    purchases INTEGER NOT NULL
) WITHOUT ROWID;
-- the contextual bandit's sums per arm (``recsmith.exploration.linear_rows``)
CREATE TABLE IF NOT EXISTS bandit_linear (
    model TEXT NOT NULL,
    arm TEXT NOT NULL,
    cell INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (model, arm, cell)
) WITHOUT ROWID;
"""
#: The audit trail (``governance.audit``): append-only, enforced by triggers.
_AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    key_id TEXT,
    key_name TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""
#: Privacy marks (``recsmith.privacy``): the salt of the person hashes and each marked person's
#: erasure and consent, keyed by that hash (never an id in clear).
_PRIVACY_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS privacy_salt (id INTEGER PRIMARY KEY CHECK (id = 1), salt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS privacy_marks (
    subject TEXT PRIMARY KEY,
    erased INTEGER NOT NULL,
    personalization INTEGER NOT NULL,
    tracking INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS privacy_marks_updated ON privacy_marks (updated_at);
"""
    + ALIAS_SCHEMA
)
#: Columns added to ``events`` and ``decisions`` after their first release, with their types
#: (``_add_columns``).
_ADDED_EVENT_COLUMNS = (("recommendation_id", "TEXT"), ("position", "INTEGER"))
_ADDED_DECISION_COLUMNS = (
    ("latency_ms", "REAL"),
    ("assignment_propensity", "REAL"),
    ("page_view", "TEXT"),
    ("arm", "TEXT"),
    ("arm_propensity", "REAL"),
    ("arm_context", "TEXT"),
)
_ADDED_KEY_COLUMNS = (("revoked_at", "INTEGER"), ("expires_at", "INTEGER"))
_KEY_SELECT = f"SELECT {', '.join(API_KEY_COLUMNS)} FROM api_keys"

_EVENT_SELECT = ", ".join(EVENT_COLUMNS)
_INSERT_EVENT = (
    f"INSERT INTO events ({_EVENT_SELECT}, received_at) "
    f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})"
)
_INSERT_DECISION = (
    f"INSERT OR IGNORE INTO decisions ({', '.join(rows.DECISION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(rows.DECISION_COLUMNS))})"
)
#: Most lists one multi-row ``INSERT`` stores (``_insert_decisions``): ``executemany`` steps once
#: a row, and each step hands the GIL to the event loop and waits to get it back; one statement of
#: many rows binds and steps once. 64 lists bind 1,088 values: within the 32,766 variables SQLite
#: allows a statement since 3.32, not the 999 of older builds, so a connection's own limit
#: (``_decisions_per_insert``) can make the chunk smaller.
_DECISIONS_PER_INSERT = 64


def _decisions_per_insert(conn: sqlite3.Connection) -> int:
    """Lists one statement on ``conn`` may store: as many as its variable limit holds rows of
    ``DECISION_COLUMNS`` (58 under a limit of 999), at most ``_DECISIONS_PER_INSERT``, at
    least one (a limit below one row fails on the one-row statement as well)."""
    fits = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(rows.DECISION_COLUMNS)
    return max(1, min(_DECISIONS_PER_INSERT, fits))


@cache
def _insert_decisions(lists: int) -> str:
    """``INSERT OR IGNORE`` of ``lists`` decision rows in one statement (made once a size)."""
    row = f"({', '.join('?' * len(rows.DECISION_COLUMNS))})"
    return (
        f"INSERT OR IGNORE INTO decisions ({', '.join(rows.DECISION_COLUMNS)}) VALUES "
        + ", ".join([row] * lists)
    )


_GET_DECISION = f"SELECT {rows.PACKED_SELECT} FROM decisions WHERE recommendation_id = ?"
_SHOWN_IN = (
    rows.backend_sql(rows.LOOKUP_SQL, "sqlite", "?")
    + "WHERE d.recommendation_id IN (SELECT value FROM json_each(?))"
)
_SHOWN_TO = (
    rows.backend_sql(rows.LOOKUP_SQL, "sqlite", "?")
    + "WHERE d.unit IN (SELECT value FROM json_each(?)) AND d.served_at >= ? AND d.served_at <= ?"
)
_SHOWS_OF = rows.backend_sql(rows.SHOWS_SQL, "sqlite", "?")
_INSERT_ATTRIBUTION = (
    f"INSERT OR IGNORE INTO attributions ({', '.join(rows.ATTRIBUTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(rows.ATTRIBUTION_COLUMNS))})"
)
_EVENTS_BY_ID = (
    f"SELECT {', '.join(f'e.{c}' for c in EVENT_COLUMNS)} FROM json_each(?) AS j "
    "CROSS JOIN events AS e ON e.event_id = j.value"
)
_CONTEXTS_BY_ID = (
    "SELECT e.event_id, e.context FROM json_each(?) AS j "
    "CROSS JOIN events AS e ON e.event_id = j.value"
)
#: A user's distinct items, first occurrence in scan order (``user_items``); ``[]`` for none
_USER_ITEMS = "SELECT json_group_array(DISTINCT item_id) FROM events WHERE user_id = ?"
#: ``_USER_ITEMS`` for each user of a JSON array, as one JSON array of arrays in its order
_USERS_ITEMS = (
    "SELECT json_group_array(json((SELECT json_group_array(DISTINCT item_id) FROM events "
    "WHERE user_id = j.value))) FROM json_each(?) AS j"
)
#: ``_USER_ITEMS`` / ``_USERS_ITEMS`` oldest first (``user_items(by_time=True)``)
_USER_ITEMS_BY_TIME = f"SELECT json_group_array(item_id) FROM ({items_in_time_order('?')})"
_USERS_ITEMS_BY_TIME = (
    "SELECT json_group_array(json((SELECT json_group_array(item_id) FROM "
    f"({items_in_time_order('j.value')})))) FROM json_each(?) AS j"
)
#: ``users_items_weighed``: per user of a JSON array (``?1``), its items oldest first and those
#: whose newest event (``NEWEST_EVENT_FIRST``) weighs 0 or below under the signal (``?2``, a JSON
#: pair of type lists), as one JSON array of pairs in its order. The tie rule as one aggregate,
#: max(2·ts + weighs 0 or below) less 2·max(ts) (1: the newest is such an event), not a window
#: over ``NEWEST_EVENT_FIRST``, which cost 2.5x the read (BENCHMARKS §186, fix31t)
_LIKED = weighs_above_zero(
    "event_type IN (SELECT value FROM json_each(?2, '$[0]'))",
    "event_type IN (SELECT value FROM json_each(?2, '$[1]'))",
)
_USERS_ITEMS_WEIGHED = (
    "SELECT json_group_array(json((SELECT json_array(json_group_array(item_id), "
    "json_group_array(item_id) FILTER (WHERE unliked)) FROM ("
    f"SELECT item_id, max(ts) AS last, max(2 * ts + NOT {_LIKED}) - 2 * max(ts) AS unliked "
    "FROM events WHERE user_id = u.value GROUP BY item_id ORDER BY last, item_id)))) "
    "FROM json_each(?1) AS u"
)
_ITEM_SELECT = "item_id, categories, tags, text, properties, available, created_at"
_MARK_SELECT = ", ".join(MARK_COLUMNS)
_UPSERT_MARK = upsert_mark_sql("?")
_DEAD_LETTERS_NAMING = dead_letter_candidates_sql("?", "instr")
_PERSON_DECISIONS = person_decisions_sql("?")
_EVENTS_BEFORE = events_before_sql("?")
#: Primary result codes that mean "the store cannot work now", not "the query is wrong".
_OUTAGE_CODES = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOTADB,
    }
)


def _add_columns(conn: sqlite3.Connection, table: str, columns: Sequence[tuple[str, str]]) -> None:
    """Columns added to ``table`` after its first release: a store written by an older version
    gets them on open (existing rows read NULL)."""
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for name, kind in columns:
        if name not in have:
            with suppress(sqlite3.OperationalError):  # another process added it meanwhile
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


log = logging.getLogger(__name__)
#: How long a connection waits for another's write lock (``sqlite3.connect``'s ``timeout``).
_BUSY_TIMEOUT_S = 30.0
#: How long the first open of a store written one row per item waits for the write lock: another
#: process opening it at the same time may be packing its lists (``_one_row_lists``), ~100 s per
#: million lists measured (§88), and a second opener should wait for that, not fail at 30 s.
_MIGRATION_WAIT_S = 3600.0


def _old_items(conn: sqlite3.Connection) -> bool:
    found = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decision_items'"
    return conn.execute(found).fetchone() is not None


def _has_items(conn: sqlite3.Connection) -> bool:
    return "items" in {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}


def _lists_unpacked(conn: sqlite3.Connection) -> bool:
    """True while the store holds lists one row per item, or lacks ``decisions.items`` (a read:
    it waits for no lock in WAL mode)."""
    exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
    if conn.execute(exists).fetchone() is None:
        return False  # a new store: nothing to move
    return _old_items(conn) or not _has_items(conn)


@contextmanager
def _migration_wait(conn: sqlite3.Connection) -> Iterator[None]:
    """``_MIGRATION_WAIT_S`` of busy timeout while an older store is opened (the schema step),
    then the usual ``_BUSY_TIMEOUT_S``: only the first open of such a store waits that long."""
    if not _lists_unpacked(conn):
        yield
        return
    conn.execute(f"PRAGMA busy_timeout = {int(_MIGRATION_WAIT_S * 1000)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")


def _one_row_lists(conn: sqlite3.Connection) -> None:
    """A store written before lists were one row each (``store.packed_items``) gets the
    ``items`` column and its lists packed, in one transaction; nothing is written when there
    is nothing to do (a read-only copy of a current store opens)."""
    if _has_items(conn) and not _old_items(conn):
        return
    with immediate(conn):
        if not _has_items(conn):  # checked again: another process may have moved it meanwhile
            default = f"'{rows.NO_ITEMS}'"
            conn.execute(f"ALTER TABLE decisions ADD COLUMN items TEXT NOT NULL DEFAULT {default}")
        if _old_items(conn):
            cursor = conn.execute(packed_items.OLD_ITEMS_SQL)
            packed_items.pack_old_items(cursor, conn.executemany, "?")
            cursor.close()
            for statement in packed_items.DROP_OLD_SQL:
                conn.execute(statement)


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on ``conn``, committed on success and rolled back on any error.
    SQLite rolls back by itself on some errors (a full disk): then there is nothing left to roll
    back, and the error that matters is the first one, not ROLLBACK's "no transaction is
    active"."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _now_us() -> int:
    return int(time.time() * 1_000_000)


#: Batches of at least this many events get ``_BULK_CACHE_KIB`` of page cache while they are
#: written; smaller ones (the server's group commits) keep SQLite's default (2 MiB).
_BULK_ROWS = 10_000
_BULK_CACHE_KIB = 256 * 1024


@contextmanager
def _bulk_cache(conn: sqlite3.Connection, rows: int) -> Iterator[None]:
    """A 256 MiB page cache for the duration of a bulk write, then the default again.

    Measured on 600,000 content-id events in chunks of 100,000: 1.0-1.8 s CPU per chunk (growing
    with the file) with the default cache and file order, 0.75-0.97 s with this and id order. It
    is given back after the write because every thread of a server has its own connection, and
    each would otherwise keep up to that much."""
    if rows < _BULK_ROWS:
        yield
        return
    default = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = -{_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(default)}")


def _build_schema(conn: sqlite3.Connection) -> None:
    """Every table, index and column of this version, created where missing (every writable
    open runs it; ``sqlite_read_only.schema_gaps`` runs it on an empty database to compare)."""
    with _migration_wait(conn):
        conn.executescript(_SCHEMA)
        _add_columns(conn, "events", _ADDED_EVENT_COLUMNS)
        conn.executescript(_DECISION_SCHEMA)
        _add_columns(conn, "decisions", _ADDED_DECISION_COLUMNS)
        _one_row_lists(conn)
    conn.executescript(_PRIVACY_SCHEMA)
    conn.executescript(_AUDIT_SCHEMA)
    _add_columns(conn, "api_keys", _ADDED_KEY_COLUMNS)
    conn.executescript(rule_rows.SQLITE_SCHEMA)
    conn.executescript(feature_rows.SQLITE_SCHEMA)


class SQLiteStore:
    """EventStore on a single SQLite file (see module docstring)."""

    local = True
    binds_rows = True  # a small group's rows are inserted as they are (``store.append_rows``)

    def __init__(
        self,
        path: str | Path,
        dead_letters: DeadLetterPolicy | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        """``read_only`` asks for a store that is only read (``sqlite_read_only``); an existing
        file SQLite refuses to write is opened so without being asked, with one logged line."""
        self.path = Path(path)
        #: why the store is read-only (``ASKED`` or ``refused_by_sqlite``'s); None: writable
        self.read_only: str | None = ASKED if read_only else None
        self.dead_letter_policy = dead_letters or DeadLetterPolicy()
        self._prune = PruneClock(self.dead_letter_policy.prune_every_s)
        self.url = f"sqlite:///{self.path}"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._turn_fd: int | None = None
        self.outage = Outage(self.url)
        try:
            if self.read_only is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._create_schema()
            if self.read_only is not None:
                self._check_schema()
        except (OSError, sqlite3.Error) as exc:
            message = f"cannot open SQLite store at {self.path}: {exc}"
            raise StoreUnavailable(message, str(exc)) from exc

    def _create_schema(self) -> None:
        """The tables and columns this version needs, created where missing. When SQLite refuses
        to write the file (a copy, a read-only mount), the store falls back to read-only: the
        file decides, not a guess from its permissions (``refused_by_sqlite``)."""
        try:
            conn = self._conn()
            _build_schema(conn)
            if not os.access(self.path, os.W_OK):  # the probe waits for the write lock
                probe_write(conn)
        except sqlite3.Error as exc:
            self.read_only = refused_by_sqlite(self.path, exc)
            if self.read_only is None:
                raise
            self.close()
            log.warning("SQLite store %s is open read-only: %s", self.path, self.read_only)

    def _check_schema(self) -> None:
        """Read-only, nothing is created: an older schema is refused by name instead."""
        gaps = schema_gaps(self._conn(), _build_schema)
        if gaps:
            raise refuse_old_schema(self.path, gaps)

    def _schema_missing(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such table")

    def _refused(self, exc: Exception) -> str | None:
        code = getattr(exc, "sqlite_errorcode", None)
        if self.read_only is None or code is None or code & 0xFF != sqlite3.SQLITE_READONLY:
            return None
        return write_refused(self.path, self.read_only)

    def _outage_cause(self, exc: Exception) -> str | None:
        if isinstance(exc, OSError):
            return str(exc)
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(exc, sqlite3.Error) and code is not None and code & 0xFF in _OUTAGE_CODES:
            return str(exc)
        return None

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None and self.read_only is not None:
            conn = self._local.conn = connect_read_only(self.path, _BUSY_TIMEOUT_S)
        elif conn is None:
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on this thread's connection (``immediate``)."""
        with immediate(self._conn()) as conn:
            yield conn

    def _write(self, sql: str, rows: Sequence[Sequence[object]]) -> int:
        """Run ``executemany`` in one immediate transaction; returns rows changed."""
        with self._immediate() as conn:
            before = conn.total_changes
            conn.executemany(sql, rows)
            return conn.total_changes - before

    # ---- events ---------------------------------------------------------------------------

    @guarded("write")
    def append(
        self, events: pd.DataFrame | None, plain_rows: Sequence[tuple[Any, ...]] | None = None
    ) -> AppendResult:
        """The ids already stored are read under the write lock, so only new rows are inserted
        and ``new`` is exact even with other processes writing (a re-import inserts nothing).

        New rows go in in id order: ids are often hashes (content ids), and inserting them in
        file order touches a random page of the id index per row. A large batch (an import
        chunk) also gets a larger page cache for its transaction (``_bulk_cache``).
        ``plain_rows``, the same events as rows (a small group's), are inserted as they are
        (``store.append_rows``)."""
        if plain_rows is not None:
            return self._append_rows(plain_rows)
        if events is None:
            raise TypeError("append needs the events' frame or their plain_rows")
        first = first_of_each_id(events)
        if not first.any():
            return appended(first, first)
        ids = events["event_id"]
        # the cache outlives the transaction: its COMMIT writes the dirty pages out
        with _bulk_cache(self._conn(), len(events)), self._immediate() as conn:
            stored = [
                row[0]
                for row in conn.execute(
                    "SELECT event_id FROM events WHERE event_id IN "
                    "(SELECT value FROM json_each(?))",
                    (json.dumps(sorted(ids[first].tolist())),),
                )
            ]
            fresh = first & ~ids_in(ids, stored)
            if fresh.any():
                rows = events[fresh].sort_values("event_id", kind="stable")
                conn.executemany(_INSERT_EVENT, event_rows(rows, _now_us()))
        return appended(first, fresh)

    def _append_rows(self, plain_rows: Sequence[tuple[Any, ...]]) -> AppendResult:
        """``append`` of the same events as plain rows: no frame is read."""
        ids = [row[0] for row in plain_rows]
        first = append_rows.first_of_each(ids)
        if not first.any():
            return appended(first, first)
        with self._immediate() as conn:
            stored = {
                row[0]
                for row in conn.execute(
                    f"SELECT event_id FROM events WHERE event_id IN ({', '.join('?' * len(ids))})",
                    ids,
                )
            }
            fresh = append_rows.fresh_of(ids, first, stored)
            if fresh.any():
                conn.executemany(
                    _INSERT_EVENT, append_rows.insert_rows(plain_rows, fresh, _now_us())
                )
        return appended(first, fresh)

    @guarded_iter
    def scan(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Collection[str] | None = None,
        batch_size: int = 100_000,
    ) -> Iterator[pd.DataFrame]:
        lo, hi = scan_bounds(since, until)
        sql = f"SELECT {_EVENT_SELECT} FROM events WHERE ts >= ? AND ts < ?"
        params: list[object] = [lo, hi]
        if types is not None:
            sql += f" AND event_type IN ({', '.join('?' * len(types))})"
            params.extend(types)
        cursor = self._conn().execute(sql + " ORDER BY ts, event_id", params)
        while rows := cursor.fetchmany(batch_size):
            yield frame_from_rows(rows)

    @guarded("read")
    def count_events(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    @guarded("read")
    def events_per_minute(self, since: datetime, until: datetime) -> list[tuple[int, int]]:
        rows = self._conn().execute(events_per_minute_query("?"), (micros(since), micros(until)))
        return [(int(m), int(n)) for m, n in rows.fetchall()]

    @guarded("read")
    def events_by_id(self, event_ids: Sequence[str]) -> pd.DataFrame:
        """One query for any number of ids, looked up in id order: an import checks 100,000
        ids per chunk, and probing the id index in order reads each of its pages once."""
        rows = self._conn().execute(_EVENTS_BY_ID, (json.dumps(sorted(set(event_ids))),))
        return frame_from_rows(rows.fetchall())

    @guarded("read")
    def contexts_by_id(self, event_ids: Sequence[str]) -> dict[str, str | None]:
        """Looked up in id order, as ``events_by_id``."""
        rows = self._conn().execute(_CONTEXTS_BY_ID, (json.dumps(sorted(set(event_ids))),))
        return dict(rows.fetchall())

    @guarded("read")
    def user_items(self, user_id: str, *, by_time: bool = False) -> list[str]:
        """Read on the event loop once per served list: one row, the distinct items as a JSON
        array in the order ``SELECT DISTINCT`` gives them (the ``events_user_item`` index's),
        or oldest first (``by_time``: ``user_items_sql``), decoded by ``json.loads`` in C
        instead of a Python step per row (BENCHMARKS §98)."""
        sql = _USER_ITEMS_BY_TIME if by_time else _USER_ITEMS
        (text,) = self._conn().execute(sql, (user_id,)).fetchone()
        return json.loads(text)  # type: ignore[no-any-return]

    @guarded("read")
    def users_items(self, user_ids: Sequence[str], *, by_time: bool = False) -> list[list[str]]:
        """``user_items``'s query per user as a correlated subquery (each user's list in the
        same order), one row for the whole group: one statement and one ``json.loads``."""
        ids = json.dumps(user_id_list(user_ids))
        sql = _USERS_ITEMS_BY_TIME if by_time else _USERS_ITEMS
        (text,) = self._conn().execute(sql, (ids,)).fetchone()
        return json.loads(text)  # type: ignore[no-any-return]

    @guarded("read")
    def users_items_weighed(
        self, user_ids: Sequence[str], signal: Signal
    ) -> list[tuple[list[str], list[str]]]:
        """One statement and one ``json.loads`` for the group, as ``users_items``."""
        ids = json.dumps(user_id_list(user_ids))
        (text,) = self._conn().execute(_USERS_ITEMS_WEIGHED, (ids, json.dumps(signal))).fetchone()
        return [(items, unliked) for items, unliked in json.loads(text)]

    # ---- catalog and users ----------------------------------------------------------------

    @guarded("write")
    def upsert_items(self, items: Sequence[Item]) -> int:
        now = _now_us()
        return self._write(
            "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(item_id) DO UPDATE SET "
            "categories=excluded.categories, tags=excluded.tags, text=excluded.text, "
            "properties=excluded.properties, available=excluded.available, "
            "created_at=COALESCE(excluded.created_at, items.created_at), "
            "updated_at=excluded.updated_at",
            [item_row(item, now) for item in items],
        )

    @guarded("read")
    def get_item(self, item_id: str) -> Item | None:
        row = (
            self._conn()
            .execute(f"SELECT {_ITEM_SELECT} FROM items WHERE item_id = ?", (item_id,))
            .fetchone()
        )
        return None if row is None else item_from_row(row)

    @guarded("read")
    def items(self) -> list[Item]:
        rows = self._conn().execute(f"SELECT {_ITEM_SELECT} FROM items ORDER BY item_id").fetchall()
        return [item_from_row(r) for r in rows]

    @guarded("read")
    def items_changed_since(
        self, since_us: int, skip: Mapping[str, int] | None = None
    ) -> list[tuple[Item, int]]:
        rows = (
            self._conn()
            .execute(
                f"SELECT {_ITEM_SELECT}, updated_at FROM items WHERE updated_at >= ?", (since_us,)
            )
            .fetchall()
        )
        skip = skip or {}
        return [(item_from_row(r), int(r[7])) for r in rows if skip.get(r[0]) != r[7]]

    @guarded("write")
    def upsert_users(self, users: Sequence[User]) -> int:
        now = _now_us()
        return self._write(
            "INSERT INTO users VALUES (?, ?, ?) ON CONFLICT(user_id) DO UPDATE SET "
            "properties=excluded.properties, updated_at=excluded.updated_at",
            [(u.user_id, json.dumps(u.properties), now) for u in users],
        )

    @guarded("read")
    def get_user(self, user_id: str) -> User | None:
        row = (
            self._conn()
            .execute("SELECT user_id, properties FROM users WHERE user_id = ?", (user_id,))
            .fetchone()
        )
        return None if row is None else User(user_id=row[0], properties=json.loads(row[1]))

    @guarded("read")
    def users(self) -> list[User]:
        rows = self._conn().execute("SELECT user_id, properties FROM users ORDER BY user_id")
        return [User(user_id=r[0], properties=json.loads(r[1])) for r in rows.fetchall()]

    @guarded("write")
    def delete_user(self, user_id: str) -> int:
        with self._immediate() as conn:
            conn.execute(
                "DELETE FROM attributions WHERE event_id IN "
                "(SELECT event_id FROM events WHERE user_id = ?)",
                (user_id,),
            )
            removed = conn.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM decisions WHERE unit = ?", (user_id,))
        return int(removed)

    # --- erasure --- (``recsmith.privacy``: erase, export, consent marks, retention)

    @guarded("write")
    def privacy_salt(self) -> bytes:
        """Read, and written only the first time (a reader of a read-only copy gets it too)."""
        found = self._conn().execute("SELECT salt FROM privacy_salt").fetchone()
        if found is None:
            with self._immediate() as conn:
                fresh = (secrets.token_hex(32),)
                conn.execute("INSERT OR IGNORE INTO privacy_salt VALUES (1, ?)", fresh)
                found = conn.execute("SELECT salt FROM privacy_salt").fetchone()
        return bytes.fromhex(found[0])

    @guarded("read")
    def privacy_marks(self, since_us: int = 0) -> list[Mark]:
        found = self._conn().execute(
            f"SELECT {_MARK_SELECT} FROM privacy_marks WHERE updated_at >= ?", (since_us,)
        )
        return [mark_from_row(row) for row in found.fetchall()]

    @guarded("write")
    def set_privacy_mark(self, mark: Mark) -> None:
        with self._immediate() as conn:
            conn.execute(_UPSERT_MARK, mark_row(mark, _now_us()))

    @guarded("write")
    def erase_person(self, user_id: str, mark: Mark) -> dict[str, int]:
        """One transaction: the person's rows in every table that names them, and their mark."""
        counts: dict[str, int] = {}
        with self._immediate() as conn:
            for query in person_queries(conn.execute, "?", user_id):
                removed = query.run(conn.execute, user_id)
                counts[query.kind] = counts.get(query.kind, 0) + removed
            once, twice = search_texts(user_id)
            candidates = conn.execute(_DEAD_LETTERS_NAMING, (once, twice, once)).fetchall()
            doomed = [(r[0],) for r in candidates if names_person(user_id, r[1], r[2])]
            conn.executemany("DELETE FROM dead_letters WHERE id = ?", doomed)
            counts["dead_letters"] = len(doomed)
            conn.execute(_UPSERT_MARK, mark_row(mark, _now_us()))
        return counts

    @guarded("read")
    def person_events(self, user_id: str) -> pd.DataFrame:
        found = self._conn().execute(
            f"SELECT {_EVENT_SELECT} FROM events WHERE user_id = ? ORDER BY ts, event_id",
            (user_id,),
        )
        return frame_from_rows(found.fetchall())

    @guarded("read")
    def person_decisions(self, unit: str) -> list[Decision]:
        found = self._conn().execute(_PERSON_DECISIONS, (unit,)).fetchall()
        return [rows.decision_from_row(row) for row in found]

    @guarded("write")
    def delete_events_before(self, ts: datetime) -> int:
        """Retention: events (and their attributions) that happened before ``ts``."""
        cutoff = micros(ts)
        with self._immediate() as conn:
            attributions, events = _EVENTS_BEFORE
            conn.execute(attributions, (cutoff,))
            return int(conn.execute(events, (cutoff,)).rowcount)

    @guarded("write")
    def link_alias(self, alias: str, user_id: str, kind: str) -> tuple[str, str]:
        with self._immediate() as conn:
            return link_alias_in(conn.execute, "?", alias, user_id, kind, _now_us())

    @guarded("write")
    def unlink_alias(self, alias: str, user_id: str) -> bool:
        with self._immediate() as conn:
            return conn.execute(unlink_alias_sql("?"), (alias, user_id)).rowcount > 0

    @guarded("read")
    def aliases_of(self, user_id: str) -> list[tuple[str, str, int]]:
        found = self._conn().execute(aliases_of_sql("?"), (user_id,)).fetchall()
        return [(a, k, int(t)) for a, k, t in found]

    @guarded("read")
    def alias_map(self) -> dict[str, str]:
        return dict(self._conn().execute(ALIAS_MAP_SQL).fetchall())

    @guarded("write")
    def delete_dead_letters_before(self, ts: datetime) -> int:
        with self._immediate() as conn:
            query = "DELETE FROM dead_letters WHERE received_at < ?"
            return int(conn.execute(query, (micros(ts),)).rowcount)

    # ---- decisions and attributions (``recsmith.decisions``) -------------------------------

    @guarded("write")
    def append_decisions(self, decisions: Sequence[Decision]) -> int:
        """Idempotent on ``recommendation_id`` (a writer retrying after a failed commit). One
        row a list, its items packed: two B-trees touched a list, not four (§88). Whole chunks
        of ``_decisions_per_insert`` lists go in one statement each (in order: the same rows,
        rowids and ignored repeats as one statement a list), the rest one by one."""
        if not decisions:
            return 0
        heads = rows.header_rows(decisions)
        with self._immediate() as conn:
            per = _decisions_per_insert(conn)
            whole = len(heads) - len(heads) % per
            before = conn.total_changes
            for start in range(0, whole, per):
                chunk = heads[start : start + per]
                conn.execute(_insert_decisions(per), list(chain.from_iterable(chunk)))
            conn.executemany(_INSERT_DECISION, heads[whole:])  # rows in order, as one by one
            return conn.total_changes - before

    @guarded("read")
    def get_decision(self, recommendation_id: str) -> Decision | None:
        row = self._conn().execute(_GET_DECISION, (recommendation_id,)).fetchone()
        return None if row is None else rows.decision_from_row(row)

    @guarded("read")
    def scan_decisions(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        lo, hi = scan_bounds(since, until)
        found = self._conn().execute(rows.SCAN_SQL.format(p="?"), (lo, hi)).fetchall()
        return rows.shown_frame(found)

    @guarded("read")
    def count_decisions(self, since: datetime | None = None, until: datetime | None = None) -> int:
        found = self._conn().execute(rows.COUNT_SQL.format(p="?"), scan_bounds(since, until))
        return int(found.fetchone()[0])

    @guarded("read")
    def shown_in(self, recommendation_ids: Sequence[str]) -> pd.DataFrame:
        """Every item of these decisions (``rows.LOOKUP_COLUMNS``): explicit attribution."""
        found = self._conn().execute(_SHOWN_IN, (json.dumps(list(recommendation_ids)),))
        return rows.lookup_frame(found.fetchall())

    @guarded("read")
    def shown_to(self, units: Sequence[str], since_us: int, until_us: int) -> pd.DataFrame:
        """Items shown to these units with ``since_us <= served_at <= until_us``: the window
        rule's candidates."""
        found = self._conn().execute(_SHOWN_TO, (json.dumps(list(units)), since_us, until_us))
        return rows.lookup_frame(found.fetchall())

    @guarded("read")
    def shows_of(
        self, unit: str, since_us: int, until_us: int
    ) -> list[tuple[str, str, int, str | None]]:
        return self._conn().execute(_SHOWS_OF, (unit, since_us, until_us)).fetchall()

    @guarded("write")
    def delete_decisions_before(self, ts: datetime) -> int:
        """Retention: decisions served before ``ts``, and attributions of events before it."""
        cutoff = micros(ts)
        with self._immediate() as conn:
            removed = conn.execute("DELETE FROM decisions WHERE served_at < ?", (cutoff,)).rowcount
            conn.execute("DELETE FROM attributions WHERE ts < ?", (cutoff,))
            minute = cutoff // rows.MICROS_PER_MINUTE
            conn.execute("DELETE FROM experiment_requests WHERE minute < ?", (minute,))
        return int(removed)

    @guarded("read")
    def decision_latencies(
        self, experiment: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        lo, hi = scan_bounds(since, until)
        found = self._conn().execute(rows.LATENCY_SQL.format(p="?"), (experiment, lo, hi))
        return rows.latency_frame(found.fetchall())

    @guarded("write")
    def add_request_counts(self, counts: Sequence[tuple[Any, ...]]) -> None:
        if counts:
            self._write(rows.UPSERT_REQUESTS_SQL.format(p="?"), list(counts))

    @guarded("read")
    def request_counts(
        self, experiment: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        first, last = rows.minute_bounds(*scan_bounds(since, until))
        found = self._conn().execute(rows.REQUESTS_SQL.format(p="?"), (experiment, first, last))
        return rows.request_frame(found.fetchall())

    @guarded("write")
    def append_attributions(self, attributions: pd.DataFrame) -> int:
        """Idempotent on ``event_id``: an event is attributed once, to one list."""
        if len(attributions) == 0:
            return 0
        return self._write(_INSERT_ATTRIBUTION, rows.attribution_rows(attributions))

    @guarded("read")
    def scan_attributions(self, since: datetime | None = None) -> pd.DataFrame:
        """Attributions of events at or after ``since``."""
        lo, _ = scan_bounds(since, None)
        found = self._conn().execute(
            f"SELECT {', '.join(rows.ATTRIBUTION_COLUMNS)} FROM attributions WHERE ts >= ?",
            (lo,),
        )
        return rows.attribution_frame(found.fetchall())

    # --- bandit state ---

    @guarded("write")
    def add_arm_counts(self, counts: Sequence[tuple[str, int, int, int]]) -> None:
        if counts:
            self._write(arm_rows.UPSERT_ARMS_SQL.format(p="?"), list(counts))

    @guarded("read")
    def arm_counts(self, version: int = 0) -> ArmCounts:
        found = self._conn().execute(arm_rows.SELECT_ARMS_SQL).fetchall()
        return arm_rows.arm_counts(found, version)

    @guarded("write")
    def add_linear_cells(self, cells: Sequence[tuple[str, str, int, float]]) -> None:
        if cells:
            self._write(linear_rows.UPSERT_CELLS_SQL.format(p="?"), list(cells))

    @guarded("read")
    def linear_cells(self, model: str) -> list[tuple[str, int, float]]:
        found = self._conn().execute(linear_rows.SELECT_CELLS_SQL.format(p="?"), (model,))
        return [tuple(r) for r in found.fetchall()]

    # --- audit ---

    @guarded("write")
    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        marks = ", ".join("?" * len(AUDIT_COLUMNS))
        self._write(
            f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES ({marks})",
            [audit_row(r) for r in records],
        )

    @guarded("read")
    def scan_audit(
        self, since: datetime | None = None, action: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        query, params = scan_audit_query(since, action, limit, "?")
        found = self._conn().execute(query, params).fetchall()
        return [audit_from_row(r) for r in reversed(found)]

    # --- live business rules (``recsmith.merchandising``) ---

    @guarded("write")
    def append_feature_samples(self, rows: Sequence[tuple[str, int, bytes]]) -> int:
        return self._write(feature_rows.INSERT_SQL.format(p="?"), rows) if rows else 0

    @guarded("read")
    def feature_samples(self, release: str, since_us: int) -> list[bytes]:
        found = self._conn().execute(feature_rows.SELECT_SQL.format(p="?"), (release, since_us))
        return [r[0] for r in found.fetchall()]

    @guarded("write")
    def trim_feature_samples(self, before_us: int, keep: int) -> int:
        return self._write(feature_rows.TRIM_SQL.format(p="?"), [(before_us, keep)])

    @guarded("write")
    def add_rule_set(self, document: str, set_by: str | None, at_us: int) -> int:
        with self._immediate() as conn:
            found = conn.execute(rule_rows.INSERT_SQL.format(p="?"), (document, set_by, at_us))
            return int(found.fetchone()[0])

    @guarded("read")
    def rule_set_version(self) -> int:
        return int(self._conn().execute(rule_rows.VERSION_SQL).fetchone()[0])

    @guarded("read")
    def rule_sets(self, limit: int = 1, version: int | None = None) -> list[tuple[Any, ...]]:
        if version is not None:
            return self._conn().execute(rule_rows.ONE_SQL.format(p="?"), (version,)).fetchall()
        return self._conn().execute(rule_rows.LATEST_SQL.format(p="?"), (limit,)).fetchall()

    # --- dead letters ---

    @guarded("write")
    def add_dead_letters(self, rejections: Sequence[Rejection], source: str) -> None:
        """Store the rejections (payloads capped) and, at most once per ``prune_every_s``,
        delete dead letters past their retention in the same transaction."""
        if not rejections:
            return
        now, policy = _now_us(), self.dead_letter_policy
        rows = dead_letter_rows(rejections, source, now, policy.max_payload_bytes)
        with self._immediate() as conn:
            conn.executemany(
                "INSERT INTO dead_letters (received_at, source, record_index, errors, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            if self._prune.due():
                cutoff = now - int(policy.retention_s * 1_000_000)
                conn.execute("DELETE FROM dead_letters WHERE received_at < ?", (cutoff,))

    @guarded("read")
    def dead_letters(
        self,
        limit: int = 100,
        *,
        since: datetime | None = None,
        reason: str | None = None,
        after_id: int = 0,
    ) -> list[DeadLetter]:
        query, params = dead_letter_query(limit, since, reason, after_id, "instr(?, ?) > 0")
        return [dead_letter_from_row(r) for r in self._conn().execute(query, params).fetchall()]

    @guarded("read")
    def dead_letter_summary(self, since: datetime, latest: int) -> tuple[int, list[DeadLetter]]:
        count, newest = dead_letter_summary_queries("?")
        conn, start = self._conn(), micros(since)
        total = int(conn.execute(count, (start,)).fetchone()[0])
        rows = conn.execute(newest, (start, latest)).fetchall()
        return total, [dead_letter_from_row(r) for r in rows]

    @guarded("write")
    def delete_dead_letters(self, letter_ids: Sequence[int]) -> int:
        return self._write("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in letter_ids])

    @guarded("read")
    def dead_letter_sources(self, sources: Sequence[str]) -> set[str]:
        found: set[str] = set()
        conn = self._conn()
        for start in range(0, len(sources), 500):  # under SQLite's bound-parameter limit
            chunk = list(sources[start : start + 500])
            query = (
                "SELECT DISTINCT source FROM dead_letters "
                f"WHERE source IN ({', '.join('?' * len(chunk))})"
            )
            found.update(row[0] for row in conn.execute(query, chunk).fetchall())
        return found

    # --- keys ---

    @guarded("write")
    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        self._write(
            f"INSERT INTO api_keys (key_hash, {', '.join(API_KEY_COLUMNS)}) "
            f"VALUES ({', '.join('?' * (len(API_KEY_COLUMNS) + 1))})",
            [(key_hash, *api_key_row(key))],
        )

    @guarded("read")
    def find_api_key(self, key_hash: str) -> ApiKey | None:
        row = self._conn().execute(f"{_KEY_SELECT} WHERE key_hash = ?", (key_hash,)).fetchone()
        return None if row is None else api_key_from_row(row)

    @guarded("read")
    def api_keys(self) -> list[ApiKey]:
        rows = self._conn().execute(f"{_KEY_SELECT} ORDER BY created_at, key_id").fetchall()
        return [api_key_from_row(r) for r in rows]

    @guarded("write")
    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey | None:
        with self._immediate() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked = 1, revoked_at = ? WHERE key_id = ? AND revoked = 0",
                (micros(at), key_id),
            )
            row = conn.execute(f"{_KEY_SELECT} WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else api_key_from_row(row)

    def ping(self) -> bool:
        try:
            self._read_heartbeat()
        except StoreUnavailable:
            return False
        return True

    @guarded("read")
    def _read_heartbeat(self) -> None:
        """A read that touches the file and the schema (``SELECT 1`` touches neither)."""
        self._conn().execute("SELECT at FROM heartbeat").fetchall()

    @guarded("heartbeat")
    def heartbeat(self) -> None:
        self._write(
            "INSERT INTO heartbeat VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at",
            [(_now_us(),)],
        )

    def bulk_load(self) -> AbstractContextManager[None]:
        """See ``EventStore.bulk_load``; ``_create_schema``, which every open runs, builds the
        dropped indexes again."""
        return indexes_deferred(self)

    @guarded("write")
    def _defer_event_indexes(self) -> bool:
        with self._immediate() as conn:
            if conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None:
                return False
            for name in DEFERRED_EVENT_INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
        return True

    @contextmanager
    def writer_turn(self) -> Iterator[None]:
        """See ``EventStore.writer_turn``; blocks until this process holds ``<file>-writer``.

        A lock file of its own, never the database: closing any descriptor of the database file
        would drop the POSIX locks SQLite holds on it. One descriptor per store, so two group
        commits of one process sharing a store do not exclude each other (SQLite still does).
        Where the lock file cannot be opened or locked (a read-only directory), there is no turn
        to take: the commit goes on and meets whatever the store says."""
        with self._lock:
            if self._turn_fd is None:
                with suppress(OSError):
                    self._turn_fd = os.open(
                        f"{self.path}-writer", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
                    )
            fd = self._turn_fd
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without flock: no turn either
            fd = None
        if fd is None:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close_thread(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Let go of every connection: this thread's is closed now; each other thread's closes
        when its last reference goes, at once for an idle one, at the end of the call for one in
        use. Closing a connection while another thread runs a statement on it crashes the
        process (a watcher's read overtaken by a server's shutdown did, in CI), and a store
        cannot tell which of its connections are in use."""
        mine: sqlite3.Connection | None = getattr(self._local, "conn", None)
        with self._lock:
            if self._turn_fd is not None:
                os.close(self._turn_fd)
                self._turn_fd = None
        self._local = threading.local()
        if mine is not None:
            mine.close()
