"""PostgreSQL backend (psycopg 3): the production store, for several servers sharing one database.

Why it looks the way it does:

* One connection per thread (like the SQLite backend): psycopg serialises calls on a connection, so
  sharing one across the server's thread pool would make every request wait for every other.
* Autocommit off and one explicit transaction per call: a committed ``append`` is durable, and a
  failed one leaves nothing half-written.
* ``append`` COPYs the batch into a temp table and inserts from there with ``ON CONFLICT DO
  NOTHING``: one round trip per batch instead of one per event, and idempotent on ``event_id``.
* ``scan`` streams through a server-side cursor on a connection of its own, so a million-row scan
  never sits in memory and other calls made while it is being consumed cannot end its transaction.
* The schema is created lazily on the first connection, under an advisory lock, so a store can be
  opened (and ``ping`` answer False) while the database is still starting, and so several processes
  starting at once do not race on ``CREATE TABLE``.
* Ids that are sorted on (``event_id``, ``items.item_id``) use the "C" collation: byte order,
  as in SQLite, whatever the database's locale, so both backends return the same order.
* ``?schema=NAME`` in the URL puts every table in that schema (created if missing), which lets
  tests and several deployments share one database.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd
import psycopg
from psycopg import sql

from recsmith.errors import StoreUnavailable, ValidationError
from recsmith.events.schema import EVENT_COLUMNS, Item, Rejection, User
from recsmith.store.base import (
    ApiKey,
    AppendResult,
    DeadLetter,
    dead_letter_from_row,
    dead_letter_rows,
    dedupe_batch,
    event_rows,
    frame_from_rows,
    from_micros,
    item_from_row,
    item_row,
    micros,
    scan_bounds,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT,
    session_id TEXT,
    item_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    value DOUBLE PRECISION,
    ts BIGINT NOT NULL,
    context TEXT,
    received_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts, event_id);
CREATE INDEX IF NOT EXISTS events_user ON events (user_id);
CREATE TABLE IF NOT EXISTS items (
    item_id TEXT COLLATE "C" PRIMARY KEY,
    categories TEXT NOT NULL,
    tags TEXT NOT NULL,
    text TEXT,
    properties TEXT NOT NULL,
    available BOOLEAN NOT NULL,
    created_at BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    properties TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at BIGINT NOT NULL,
    source TEXT NOT NULL,
    record_index BIGINT NOT NULL,
    errors TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
"""

_EVENT_COLS = ", ".join(EVENT_COLUMNS)
_ITEM_SELECT = "item_id, categories, tags, text, properties, available, created_at"
_STAGE = "recsmith_incoming"
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: Failures that mean "the database is not there", as opposed to a bug in a query.
_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)


def _now_us() -> int:
    return int(time.time() * 1_000_000)


def _redact(url: str) -> str:
    """The URL without its password, fit for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _split_schema(url: str) -> tuple[str, str | None]:
    """Remove ``schema=`` from the query (libpq would refuse it) and return it separately."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in query if k == "schema"]
    rest = [(k, v) for k, v in query if k != "schema"]
    if not schemas:
        return url, None
    schema = schemas[-1]
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValidationError("store.url", f"schema {schema!r} is not a plain SQL identifier")
    return urlunsplit(parts._replace(query=urlencode(rest))), schema


class PostgresStore:
    """EventStore on PostgreSQL (see module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conninfo, self._schema = _split_schema(url)
        self._safe_url = _redact(url)
        self._local = threading.local()
        self._all: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresStore({self._safe_url!r})"

    # ---- connections ----------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection with the search path set and the schema known to exist."""
        extra = {} if "connect_timeout" in self._conninfo else {"connect_timeout": 10}
        try:
            conn = psycopg.connect(self._conninfo, autocommit=False, **extra)
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self._safe_url}: {exc}".strip()) from exc
        try:
            with conn.cursor() as cur:
                if self._schema is not None:
                    path = sql.Identifier(self._schema).as_string(conn)
                    cur.execute("SELECT set_config('search_path', %s, false)", (path,))
                if not self._ready:
                    with self._ready_lock:
                        if not self._ready:
                            self._create_schema(cur)
            conn.commit()
            self._ready = True
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailable(
                f"cannot prepare PostgreSQL store at {self._safe_url}: {exc}") from exc
        return conn

    def _create_schema(self, cur: psycopg.Cursor[Any]) -> None:
        """Create schema and tables; the lock makes concurrent first starts wait, not collide."""
        name = f"recsmith-schema:{self._schema or ''}".encode()
        key = int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        if self._schema is not None:
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(self._schema)))
        cur.execute(_SCHEMA)

    def _conn(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        """Roll back; forget the connection when it is dead so the next call reconnects."""
        try:
            conn.rollback()
        except psycopg.Error:
            pass
        if conn.closed or conn.broken:
            conn.close()
            if getattr(self._local, "conn", None) is conn:
                self._local.conn = None
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor inside one transaction: committed on success, rolled back on any error."""
        conn = self._conn()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException as exc:
            self._discard(conn)
            if isinstance(exc, _UNAVAILABLE):
                raise StoreUnavailable(f"PostgreSQL at {self._safe_url} failed: {exc}") from exc
            raise

    # ---- events ---------------------------------------------------------------------------

    def append(self, events: pd.DataFrame) -> AppendResult:
        unique, repeats = dedupe_batch(events)
        if unique.empty:
            return AppendResult(0, repeats)
        cols = f"{_EVENT_COLS}, received_at"
        with self._tx() as cur:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
                        "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            with cur.copy(f"COPY {_STAGE} ({cols}) FROM STDIN") as copy:
                for row in event_rows(unique, _now_us()):
                    copy.write_row(row)
            # Sorted inserts take row locks in one order, so concurrent overlapping batches
            # cannot deadlock.
            cur.execute(f"INSERT INTO events ({cols}) SELECT {cols} FROM {_STAGE} "
                        "ORDER BY event_id ON CONFLICT (event_id) DO NOTHING")
            inserted = max(cur.rowcount, 0)
        return AppendResult(inserted, repeats + len(unique) - inserted)

    def scan(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Collection[str] | None = None,
        batch_size: int = 100_000,
    ) -> Iterator[pd.DataFrame]:
        lo, hi = scan_bounds(since, until)
        query = f"SELECT {_EVENT_COLS} FROM events WHERE ts >= %s AND ts < %s"
        params: list[object] = [lo, hi]
        if types is not None:
            query += " AND event_type = ANY(%s)"
            params.append(list(types))
        conn = self._connect()
        try:
            with conn.cursor(name="recsmith_scan") as cur:
                cur.execute(query + " ORDER BY ts, event_id", params)
                while rows := cur.fetchmany(batch_size):
                    yield frame_from_rows(rows)
            conn.commit()
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"PostgreSQL at {self._safe_url} failed: {exc}") from exc
        finally:
            conn.close()

    def count_events(self) -> int:
        with self._tx() as cur:
            row = cur.execute("SELECT COUNT(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def user_items(self, user_id: str) -> list[str]:
        with self._tx() as cur:
            rows = cur.execute("SELECT DISTINCT item_id FROM events WHERE user_id = %s",
                               (user_id,)).fetchall()
        return [r[0] for r in rows]

    # ---- catalog and users ----------------------------------------------------------------

    def upsert_items(self, items: Sequence[Item]) -> int:
        if not items:
            return 0
        now = _now_us()
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (item_id) DO UPDATE SET categories = EXCLUDED.categories, "
                "tags = EXCLUDED.tags, text = EXCLUDED.text, properties = EXCLUDED.properties, "
                "available = EXCLUDED.available, "
                "created_at = COALESCE(EXCLUDED.created_at, items.created_at), "
                "updated_at = EXCLUDED.updated_at",
                [item_row(item, now) for item in items],
            )
        return len(items)

    def get_item(self, item_id: str) -> Item | None:
        with self._tx() as cur:
            row = cur.execute(f"SELECT {_ITEM_SELECT} FROM items WHERE item_id = %s",
                              (item_id,)).fetchone()
        return None if row is None else item_from_row(row)

    def items(self) -> list[Item]:
        with self._tx() as cur:
            rows = cur.execute(f"SELECT {_ITEM_SELECT} FROM items ORDER BY item_id").fetchall()
        return [item_from_row(r) for r in rows]

    def upsert_users(self, users: Sequence[User]) -> int:
        if not users:
            return 0
        now = _now_us()
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO users VALUES (%s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET "
                "properties = EXCLUDED.properties, updated_at = EXCLUDED.updated_at",
                [(u.user_id, json.dumps(u.properties), now) for u in users],
            )
        return len(users)

    def get_user(self, user_id: str) -> User | None:
        with self._tx() as cur:
            row = cur.execute("SELECT user_id, properties FROM users WHERE user_id = %s",
                              (user_id,)).fetchone()
        return None if row is None else User(user_id=row[0], properties=json.loads(row[1]))

    def delete_user(self, user_id: str) -> int:
        with self._tx() as cur:
            removed = cur.execute("DELETE FROM events WHERE user_id = %s", (user_id,)).rowcount
            cur.execute("DELETE FROM users WHERE user_id = %s", (user_id,))
        return max(int(removed), 0)

    # ---- dead letters and keys ------------------------------------------------------------

    def add_dead_letters(self, rejections: Sequence[Rejection], source: str) -> None:
        if not rejections:
            return
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (received_at, source, record_index, errors, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                dead_letter_rows(rejections, source, _now_us()),
            )

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self._tx() as cur:
            rows = cur.execute(
                "SELECT received_at, source, record_index, errors, payload FROM dead_letters "
                "ORDER BY id LIMIT %s", (limit,)).fetchall()
        return [dead_letter_from_row(r) for r in rows]

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, %s)",
                (key.key_id, key_hash, key.name, ",".join(key.scopes), micros(key.created_at),
                 bool(key.revoked)),
            )

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._tx() as cur:
            row = cur.execute(
                "SELECT key_id, name, scopes, created_at, revoked FROM api_keys "
                "WHERE key_hash = %s", (key_hash,)).fetchone()
        if row is None:
            return None
        created = from_micros(row[3])
        assert created is not None
        return ApiKey(row[0], row[1], tuple(row[2].split(",")), created, bool(row[4]))

    def ping(self) -> bool:
        try:
            with self._tx() as cur:
                cur.execute("SELECT 1").fetchone()
        except (StoreUnavailable, psycopg.Error):
            return False
        return True

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
