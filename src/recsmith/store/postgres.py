"""PostgreSQL backend (psycopg 3): the production store, for several servers sharing one database.

One connection per thread (a shared one would make the server's threads queue) and one transaction
per call. ``append`` COPYs into a temp table, then inserts the new ids into ``event_ids`` and
their events into ``events`` in one transaction: idempotent on ``event_id``. ``events`` is
partitioned by month of event time so that retention drops months whole (``store.partitions``:
why, and how a database from before is moved into it). ``scan`` streams ``COPY … TO STDOUT``
into columns (``store.copy_columns``) on a connection of its own, so calls made meanwhile cannot
end its transaction. Tables are created on first connection under
an advisory lock: opening never connects (``ping`` says False while the database is down), and
processes starting together do not race on DDL. Sorted ids use the "C" collation (byte order,
as in SQLite). ``?schema=name`` in the URL puts the tables in that schema (created if missing), so
tests and deployments can share one database. Tables dropped under a running store (the database or
schema recreated) are created again on the next call; an unreachable server, a lost connection, a
full disk or a read-only server raise ``StoreUnavailable`` (``store.outage``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from recsmith.decisions import rows as drows
from recsmith.decisions.record import Decision
from recsmith.errors import StoreUnavailable, ValidationError
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
from recsmith.store import base, packed_items, partitions
from recsmith.store.base import ApiKey, AppendResult, DeadLetter
from recsmith.store.copy_columns import copy_event_frames
from recsmith.store.copy_text import copy_rows
from recsmith.store.dead_letters import DeadLetterPolicy, PruneClock, dead_letter_rows
from recsmith.store.erasure_sql import (
    ALIAS_MAP_SQL,
    ALIAS_SCHEMA,
    MARK_COLUMNS,
    aliases_of_sql,
    dead_letter_candidates_sql,
    link_alias_in,
    mark_from_row,
    mark_row,
    person_decisions_sql,
    person_queries,
    unlink_alias_sql,
    upsert_mark_sql,
)
from recsmith.store.outage import Outage, guarded, guarded_iter
from recsmith.store.user_items_sql import (
    NEWEST_EVENT_FIRST,
    items_in_time_order,
    weighs_above_zero,
)

log = logging.getLogger(__name__)

_SCHEMA = (
    partitions.EVENTS_SCHEMA
    + partitions.DEFERRED_INDEXES
    + """
CREATE INDEX IF NOT EXISTS events_ts ON events (ts, event_id);
CREATE INDEX IF NOT EXISTS events_user_item ON events (user_id, item_id);  -- covers user_items
-- an anonymous visitor's events (``base.DEFERRED_EVENT_INDEXES``)
CREATE INDEX IF NOT EXISTS events_visitor ON events (session_id) WHERE user_id IS NULL;
CREATE TABLE IF NOT EXISTS items (item_id TEXT COLLATE "C" PRIMARY KEY, categories TEXT NOT NULL,
    tags TEXT NOT NULL, text TEXT, properties TEXT NOT NULL, available BOOLEAN NOT NULL,
    created_at BIGINT, updated_at BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS items_updated ON items (updated_at);
CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, properties TEXT NOT NULL,
    updated_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at BIGINT NOT NULL, source TEXT NOT NULL, record_index BIGINT NOT NULL,
    errors TEXT NOT NULL, payload TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS dead_letters_received ON dead_letters (received_at);
-- a redelivered stream message: was it dead-lettered already (``dead_letter_sources``)?
CREATE INDEX IF NOT EXISTS dead_letters_source ON dead_letters (source);
CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL, scopes TEXT NOT NULL, created_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE IF NOT EXISTS heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (recommendation_id TEXT PRIMARY KEY,
    served_at BIGINT NOT NULL, unit TEXT, unit_kind TEXT NOT NULL, route TEXT NOT NULL,
    placement TEXT, release TEXT NOT NULL, experiment TEXT, variant TEXT,
    latency_ms DOUBLE PRECISION, page_view TEXT, size INTEGER NOT NULL, items TEXT NOT NULL);
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS latency_ms DOUBLE PRECISION;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS assignment_propensity DOUBLE PRECISION;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS page_view TEXT;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS arm TEXT;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS arm_propensity DOUBLE PRECISION;
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS arm_context TEXT;
-- the shown items, packed (``decisions.rows.pack_items``): a list is one row (§88); an older
-- store's lists are packed into it on its first connection (``store.packed_items``)
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS items TEXT NOT NULL DEFAULT '"""
    + drows.NO_ITEMS
    + """';
CREATE INDEX IF NOT EXISTS decisions_served ON decisions (served_at);
-- capping's per-request read and the window rule: a unit's lists in a time range
CREATE INDEX IF NOT EXISTS decisions_unit_served ON decisions (unit, served_at);
CREATE TABLE IF NOT EXISTS attributions (event_id TEXT PRIMARY KEY,
    recommendation_id TEXT NOT NULL, position INTEGER, rule TEXT NOT NULL,
    event_type TEXT NOT NULL, value DOUBLE PRECISION, ts BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS attributions_decision ON attributions (recommendation_id);
CREATE INDEX IF NOT EXISTS attributions_ts ON attributions (ts);
CREATE TABLE IF NOT EXISTS experiment_requests (experiment TEXT NOT NULL, variant TEXT NOT NULL,
    minute BIGINT NOT NULL, requests BIGINT NOT NULL, errors BIGINT NOT NULL,
    PRIMARY KEY (experiment, variant, minute));
CREATE TABLE IF NOT EXISTS bandit_arms (arm TEXT COLLATE "C" PRIMARY KEY, shown BIGINT NOT NULL,
    clicks BIGINT NOT NULL, purchases BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS bandit_linear (model TEXT NOT NULL, arm TEXT NOT NULL,
    cell INTEGER NOT NULL, value DOUBLE PRECISION NOT NULL, PRIMARY KEY (model, arm, cell));
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS revoked_at BIGINT;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS expires_at BIGINT;
-- the audit trail (``governance.audit``): append-only, enforced by a trigger
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
-- kept last: the marker that every object above exists (``_create_tables``), and so that a
-- database written before it also got the columns and tables added above
CREATE TABLE IF NOT EXISTS audit_log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL, key_id TEXT, key_name TEXT, action TEXT NOT NULL, target TEXT NOT NULL,
    outcome TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""
)
#: Privacy marks and aliases (``recsmith.privacy``), created on first use (``_privacy_tables``);
#: the index ``_PRIVACY_NEWEST`` looks for comes last.
_PRIVACY_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS privacy_salt (id INTEGER PRIMARY KEY CHECK (id = 1), salt TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS privacy_marks (subject TEXT PRIMARY KEY, erased BOOLEAN NOT NULL,
    personalization BOOLEAN NOT NULL, tracking BOOLEAN NOT NULL, updated_at BIGINT NOT NULL);
"""
    + ALIAS_SCHEMA
    + "CREATE INDEX IF NOT EXISTS privacy_marks_updated ON privacy_marks (updated_at);"
)
#: Advisory lock key serialising the creation of the privacy tables across processes.
_PRIVACY_LOCK = 0x7265637370726976  # "recspriv"
#: Advisory lock key serialising the creation of ``rule_sets`` (``recsmith.merchandising``).
_RULES_LOCK = 0x7265637372756C65  # "recsrule"
#: ... and of ``feature_samples`` (``monitoring.feature_rows``).
_FEATURES_LOCK = 0x7265637366656174  # "recsfeat"
#: True once the privacy tables exist (the index is created last).
_PRIVACY_NEWEST = "SELECT to_regclass('privacy_marks_updated') IS NOT NULL"
_MARK_SELECT = ", ".join(MARK_COLUMNS)
_UPSERT_MARK = upsert_mark_sql("%s")
_DEAD_LETTERS_NAMING = dead_letter_candidates_sql("%s", "strpos")
_PERSON_DECISIONS = person_decisions_sql("%s")
_EVENT_COLS = ", ".join(EVENT_COLUMNS)
#: A user's distinct items (``user_items``), and oldest first (``by_time``)
_USER_ITEMS = "SELECT DISTINCT item_id FROM events WHERE user_id = %s"
_USER_ITEMS_BY_TIME = items_in_time_order("%s")
#: ``user_items`` for each user of an array, one row each in the array's order; oldest first
#: (``by_time``) by the shared query
_USERS_ITEMS = (
    "SELECT ARRAY(SELECT DISTINCT item_id FROM events WHERE user_id = u.user_id) "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(user_id, n) ORDER BY u.n"
)
_USERS_ITEMS_BY_TIME = (
    f"SELECT ARRAY({items_in_time_order('u.user_id')}) "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(user_id, n) ORDER BY u.n"
)
#: ``users_items_weighed``: per user of an array, its items oldest first and those whose newest
#: event (``DISTINCT ON``, ``NEWEST_EVENT_FIRST``) weighs 0 or below, the signal's two
#: type lists as arrays; one row a user in the array's order
_USERS_ITEMS_WEIGHED = (
    "SELECT w.items, w.unliked FROM unnest(%(users)s::text[]) WITH ORDINALITY AS u(user_id, n) "
    "CROSS JOIN LATERAL (SELECT coalesce(array_agg(item_id ORDER BY last, item_id), '{}'), "
    "coalesce(array_agg(item_id ORDER BY last, item_id) FILTER (WHERE NOT liked), '{}') FROM ("
    "SELECT DISTINCT ON (item_id) item_id, ts AS last, "
    f"{weighs_above_zero('event_type = ANY(%(constant)s)', 'event_type = ANY(%(by_value)s)')} "
    "AS liked FROM events WHERE user_id = u.user_id "
    f"ORDER BY item_id, {NEWEST_EVENT_FIRST}"
    ") AS e) AS w(items, unliked) ORDER BY u.n"
)
_ITEM_SELECT = "item_id, categories, tags, text, properties, available, created_at"
_UPSERT_ITEM = (
    "INSERT INTO items VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (item_id) DO UPDATE "
    "SET categories = EXCLUDED.categories, tags = EXCLUDED.tags, text = EXCLUDED.text, "
    "properties = EXCLUDED.properties, available = EXCLUDED.available, "
    "created_at = COALESCE(EXCLUDED.created_at, items.created_at), updated_at = EXCLUDED.updated_at"
)
_STAGE = "recsmith_incoming"
_STORED_IDS = "SELECT event_id FROM event_ids WHERE event_id = ANY(string_to_array(%s, %s))"
_CONTEXTS = "SELECT event_id, context FROM events WHERE event_id = ANY(string_to_array(%s, %s))"
#: Joins a list of ids for ``string_to_array``: a validated id holds no control character.
_ID_SEP = "\x1f"


def _id_list(ids: Sequence[str]) -> tuple[str, str]:
    """``ids`` as the parameters of ``ANY(string_to_array(%s, %s))``: psycopg adapts a list
    of 100,000 strings in ~0.13 s of CPU, one joined text in ~0.005 s. An id holding the
    separator (none that validation passes) fails instead of matching the wrong rows."""
    text = _ID_SEP.join(ids)
    if text.count(_ID_SEP) != max(len(ids) - 1, 0):
        raise ValueError("an event id holds a control character")
    return text, _ID_SEP


_STORED_COLS = f"{_EVENT_COLS}, received_at"
_CLAIM_IDS = partitions.claim_ids_sql(_STAGE)
_INSERT_EVERY = partitions.events_sql(_STAGE, _STORED_COLS, every=True)
_INSERT_CLAIMED = partitions.events_sql(_STAGE, _STORED_COLS, every=False)
_KEY_SELECT = f"SELECT {', '.join(base.API_KEY_COLUMNS)} FROM api_keys"
#: Indexes added after the first release (besides the tables ``_create_tables`` checks): a
#: database without one of them runs ``_SCHEMA`` once more on the first connection, which
#: builds it (one pass over the table, under the schema lock).
_ADDED_INDEXES = (
    *base.DEFERRED_EVENT_INDEXES,
    *partitions.DEFERRED_INDEX_NAMES,
    "dead_letters_source",
    "decisions_unit_served",
)
#: True when ``events`` is partitioned (``store.partitions``): a database from before is moved
#: into that layout on its first connection.
_PARTITIONED = (
    " AND to_regclass('event_ids') IS NOT NULL AND "
    "(SELECT relkind FROM pg_class WHERE oid = to_regclass('events')) = 'p'"
)


def _insert(table: str, columns: Sequence[str], key: str) -> str:
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({key}) DO NOTHING"
    )


_INSERT_DECISION = _insert("decisions", drows.DECISION_COLUMNS, "recommendation_id")
_GET_DECISION = f"SELECT {drows.PACKED_SELECT} FROM decisions WHERE recommendation_id = %s"
_SHOWN_IN = drows.backend_sql(drows.LOOKUP_SQL, "postgres", "%s") + (
    "WHERE d.recommendation_id = ANY(%s)"
)
_SHOWN_TO = drows.backend_sql(drows.LOOKUP_SQL, "postgres", "%s") + (
    "WHERE d.unit = ANY(%s) AND d.served_at >= %s AND d.served_at <= %s"
)
_SHOWS_OF = drows.backend_sql(drows.SHOWS_SQL, "postgres", "%s")
#: True while the database holds lists written one row per item (``store.packed_items``).
_OLD_ITEMS = "SELECT to_regclass('decision_items') IS NOT NULL"
_INSERT_ATTRIBUTION = _insert("attributions", drows.ATTRIBUTION_COLUMNS, "event_id")
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: Failures that mean "the database cannot work now" (unreachable, connection lost, disk full,
#: locks or statements past their timeout, a read-only standby), as opposed to a bug in a query.
_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.ReadOnlySqlTransaction,
)
#: Failures that mean the tables (or their schema) are gone, or a column added after the schema
#: marker was created (a database created by a build in between): created again, then one retry.
_SCHEMA_MISSING = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.InvalidSchemaName,
    psycopg.errors.UndefinedColumn,
)


def _parse_url(url: str) -> tuple[str, str | None, str]:
    """The URL without ``schema=`` (libpq refuses it), that schema, and a password-free URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in reversed(query) if k == "schema"), None)
    if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
        raise ValidationError("store.url", f"schema {schema!r} must match {_SCHEMA_NAME.pattern}")
    rest = urlencode([(k, v) for k, v in query if k != "schema"], quote_via=quote)  # no "+"
    hidden = parts.netloc.replace(f":{parts.password}@", ":***@") if parts.password else None
    safe = urlunsplit(parts._replace(netloc=hidden)) if hidden else url
    return (urlunsplit(parts._replace(query=rest)) if schema else url), schema, safe


def _one_line(exc: BaseException) -> str:
    """libpq's message on one line (it spans several: "connection refused\n\tIs the server
    running…"), so an outage is one log line and a readable ``cause``."""
    return " ".join(str(exc).split())


class PostgresStore:
    """EventStore on PostgreSQL (see module docstring). Opening it does not connect."""

    local = False
    binds_rows = False  # COPY reads the frame

    def __init__(self, url: str, dead_letters: DeadLetterPolicy | None = None) -> None:
        self.url = url
        self.dead_letter_policy = dead_letters or DeadLetterPolicy()
        self._prune = PruneClock(self.dead_letter_policy.prune_every_s)
        self._conninfo, self._schema, self._safe_url = _parse_url(url)
        try:
            given = conninfo_to_dict(self._conninfo)
        except psycopg.Error as exc:
            raise ValidationError("store.url", f"not a PostgreSQL URL: {str(exc).strip()}") from exc
        timeout = given.get("connect_timeout", 10)
        self._options: dict[str, Any] = {"autocommit": False, "connect_timeout": timeout}
        if self._schema is not None:  # a lower-case identifier (checked): no quoting needed
            path = f"-c search_path={self._schema}"
            self._options["options"] = f"{given.get('options') or ''} {path}".strip()
        self._local = threading.local()
        #: every thread's connection and the thread: ``close`` closes them all, and a thread
        #: that has ended has its connection closed (``_conn``)
        self._all: list[tuple[psycopg.Connection[Any], threading.Thread]] = []
        self._lock = threading.Lock()
        self._ready = False
        #: Bumped when a connection is found broken: every thread's connection opened before
        #: then is dropped at its next use (``_conn``), so that after an outage no thread fails
        #: once more on a dead connection it kept, starting a second outage.
        self._epoch = 0
        self._partition_key = partitions.lock_key(self._schema)
        #: months whose partition exists (``_partitions_for``)
        self._months: set[int] = set()
        self.outage = Outage(self._safe_url)

    def __repr__(self) -> str:
        return f"PostgresStore({self._safe_url!r})"

    def _down(self, what: str, exc: BaseException) -> StoreUnavailable:
        cause = _one_line(exc)
        return StoreUnavailable(f"{what} PostgreSQL at {self._safe_url}: {cause}", cause)

    def _outage_cause(self, exc: Exception) -> str | None:
        return _one_line(exc) if isinstance(exc, _UNAVAILABLE) else None

    def _refused(self, exc: Exception) -> None:
        return None  # never opened read-only: a read-only server (a standby) is an outage

    def _schema_missing(self, exc: Exception) -> bool:
        return isinstance(exc, _SCHEMA_MISSING)

    def _create_schema(self) -> None:
        conn = self._conn()
        try:
            with self._lock:
                self._create_tables(conn, always=True)  # some are missing, whatever exists
        except BaseException:
            with suppress(psycopg.Error):
                conn.rollback()
            raise

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection with the search path set, and the tables known to exist."""
        try:
            conn = psycopg.connect(self._conninfo, **self._options)
        except psycopg.Error as exc:
            raise self._down("cannot connect to", exc) from exc
        try:
            with self._lock:
                if not self._ready:
                    self._create_tables(conn)
                    self._ready = True
        except psycopg.Error as exc:
            conn.close()
            raise self._down("cannot prepare the store in", exc) from exc
        except BaseException:  # e.g. a stored list the packing refuses: rolled back, closed
            conn.close()
            raise
        return conn

    def _create_tables(self, conn: psycopg.Connection[Any], *, always: bool = False) -> None:
        """Unless ``always``, tables that exist already are left alone (no DDL: a read-only
        server, a hot standby, could not run it, yet it can serve reads). The advisory lock makes
        other processes starting at once wait instead of colliding."""
        name = f"recsmith-schema:{self._schema or ''}".encode()
        key = int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)
        with conn.cursor() as cur:
            # the newest table in _SCHEMA (change it when adding one): all are created in one
            # transaction, so when it exists they all do; and the indexes added since, or that
            # an import drops for a while (``bulk_load``)
            newest = (
                "SELECT to_regclass('audit_log') IS NOT NULL"
                + "".join(f" AND to_regclass('{name}') IS NOT NULL" for name in _ADDED_INDEXES)
                + _PARTITIONED
                + " AND to_regclass('decision_items') IS NULL"
            )
            if not always and cur.execute(newest).fetchone() == (True,):
                conn.commit()
                return
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            if self._schema is not None:
                create = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
                cur.execute(create.format(sql.Identifier(self._schema)))
            if partitions.is_flat(cur):
                moved = partitions.migrate_flat(cur, _SCHEMA, _STORED_COLS, self._partition_key)
                log.warning("moved %s events into the partitioned events table", moved)
            else:
                if cur.execute("SELECT to_regclass('events') IS NULL").fetchone() == (True,):
                    cur.execute("DROP TABLE IF EXISTS event_ids")  # the ids of a dropped table
                cur.execute(_SCHEMA)
            if cur.execute(_OLD_ITEMS).fetchone() == (True,):
                self._pack_old_items(conn, cur)
        conn.commit()
        self._months = set()

    @staticmethod
    def _pack_old_items(conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any]) -> None:
        """Lists stored one row per item packed into ``decisions.items`` in the schema's
        transaction (``store.packed_items``); the old rows streamed by a server-side cursor."""
        with conn.cursor(name="recsmith_old_items") as old:
            old.execute(packed_items.OLD_ITEMS_SQL)
            moved = packed_items.pack_old_items(old, cur.executemany, "%s")
        for statement in packed_items.DROP_OLD_SQL:
            cur.execute(statement)
        log.warning("packed %s stored lists into decisions.items (one row a list)", moved)

    def _conn(self) -> psycopg.Connection[Any]:
        """This thread's connection; a new one when it has none, or when its connection was opened
        before another thread found one broken (the server or the network went away: this one is
        as likely dead, and failing on it would restart an outage that has just ended)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "epoch", 0) != self._epoch:
            self._drop(conn)
            conn = None
        if conn is None or conn.closed or conn.broken:
            epoch = self._epoch
            conn = self._local.conn = self._connect()
            self._local.epoch = epoch
            with self._lock:
                self._close_orphans()
                self._all.append((conn, threading.current_thread()))
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (under ``_lock``). A thread's
        connection lives in its thread-local slot, which goes with the thread, but ``_all``
        kept it open: a server's worker threads come and go (anyio ends one idle for 10 s, a
        burst starts new ones), each new one opened another connection, and the ended ones'
        stayed open, idle, until PostgreSQL's ``max_connections`` refused everyone. Checked
        when a thread opens one, so a store holds at most its live threads' and those of
        threads ended since a thread last connected. A thread Python did not start (a
        ``_DummyThread``) reads alive for ever: its connection waits for ``close``."""
        alive = [pair[1].is_alive() for pair in self._all]  # once: a thread may end meanwhile
        for (conn, _), kept in zip(self._all, alive, strict=True):
            if not kept:
                with suppress(psycopg.Error):
                    conn.close()
        self._all = [pair for pair, kept in zip(self._all, alive, strict=True) if kept]

    def _drop(self, conn: psycopg.Connection[Any]) -> None:
        """Close this thread's ``conn`` and forget it."""
        with suppress(psycopg.Error):
            conn.close()
        self._local.conn = None
        with self._lock:
            self._all = [pair for pair in self._all if pair[0] is not conn]

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor in one transaction: committed on success, rolled back on any error. A dead
        connection is dropped, so the next call reconnects instead of failing forever."""
        conn = self._conn()
        try:
            with conn.cursor() as cur:
                yield cur
            conn.commit()
        except BaseException:
            with suppress(psycopg.Error):
                conn.rollback()
            if conn.closed or conn.broken:
                with self._lock:
                    self._epoch += 1
                self._drop(conn)
            raise

    def _rows(
        self, query: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[tuple[Any, ...]]:
        """One read in its own short transaction (no connection left idle in a transaction)."""
        with self._tx() as cur:
            return cur.execute(query, params).fetchall()

    def _many(self, query: str, rows: Sequence[Sequence[object]]) -> None:
        """Rows written in one transaction; psycopg pipelines ``executemany`` (no per-row wait)."""
        if rows:
            with self._tx() as cur:
                cur.executemany(query, rows)

    @guarded("write")
    def append(
        self, events: pd.DataFrame | None, plain_rows: Sequence[tuple[Any, ...]] | None = None
    ) -> AppendResult:
        """COPY into a staging table, then one INSERT from it (``plain_rows`` are not needed:
        the COPY text is built column by column from the frame, so ``binds_rows`` is False)."""
        if events is None:
            raise TypeError("PostgresStore.append reads the events' frame: pass it")
        first = base.first_of_each_id(events)
        if not first.any():
            return base.appended(first, first)
        self._partitions_for(events["ts"].to_numpy()[first])
        with self._tx() as cur:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
                "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY {_STAGE} ({_STORED_COLS}) FROM STDIN") as copy:
                copy.write(copy_rows(events[first], time.time_ns() // 1000))
            stored = [row[0] for row in cur.execute(_CLAIM_IDS).fetchall()]
            if len(stored) == int(first.sum()):
                cur.execute(_INSERT_EVERY)
            elif stored:
                cur.execute(_INSERT_CLAIMED, (stored,))
        return base.appended(first, first & base.ids_in(events["event_id"], stored))

    def _partitions_for(self, ts_us: Any) -> None:
        """Create the monthly partitions these event times need (``store.partitions``) unless
        this process made or saw them already; a month it missed lands in ``events_default``."""
        needed = partitions.months_of(ts_us)
        if not self._months.issuperset(needed):
            with self._tx() as cur:
                partitions.ensure_months(cur, needed, self._partition_key)
            self._months = self._months.union(needed)

    @guarded_iter
    def scan(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Collection[str] | None = None,
        batch_size: int = 100_000,
    ) -> Iterator[pd.DataFrame]:
        lo, hi = base.scan_bounds(since, until)
        query = f"SELECT {_EVENT_COLS} FROM events WHERE ts >= %s AND ts < %s"
        params: list[object] = [lo, hi]
        if types is not None:
            query += " AND event_type = ANY(%s)"
            params.append(list(types))
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                yield from copy_event_frames(
                    cur, query + " ORDER BY ts, event_id", params, batch_size
                )
            conn.commit()
        finally:
            conn.close()

    @guarded("read")
    def count_events(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM events")[0][0])

    @guarded("read")
    def events_per_minute(self, since: datetime, until: datetime) -> list[tuple[int, int]]:
        rows = self._rows(
            base.events_per_minute_query("%s"), (base.micros(since), base.micros(until))
        )
        return [(int(m), int(n)) for m, n in rows]

    @guarded("read")
    def events_by_id(self, event_ids: Sequence[str]) -> pd.DataFrame:
        rows = self._rows(
            f"SELECT {_EVENT_COLS} FROM events WHERE event_id = ANY(%s)", (list(event_ids),)
        )
        return base.frame_from_rows(rows)

    @guarded("read")
    def contexts_by_id(self, event_ids: Sequence[str]) -> dict[str, str | None]:
        """The ids are looked up in ``event_ids`` first (one primary key): a chunk of new events
        is answered there, without reading ``events``, whose id index an import into an empty
        store builds only at its end (``bulk_load``). They travel as one text split by the
        server (``_id_list``)."""
        with self._tx() as cur:
            found = [i for (i,) in cur.execute(_STORED_IDS, _id_list(event_ids)).fetchall()]
            if not found:
                return {}
            rows = cur.execute(_CONTEXTS, _id_list(found)).fetchall()
        return dict(rows)

    @guarded("read")
    def user_items(self, user_id: str, *, by_time: bool = False) -> list[str]:
        sql = _USER_ITEMS_BY_TIME if by_time else _USER_ITEMS
        return [r[0] for r in self._rows(sql, (user_id,))]

    @guarded("read")
    def users_items(self, user_ids: Sequence[str], *, by_time: bool = False) -> list[list[str]]:
        """``user_items``'s query per user (a lateral subquery on the ``events_user_item``
        index), one row a user in the order asked: one round trip for a coalesced group."""
        sql = _USERS_ITEMS_BY_TIME if by_time else _USERS_ITEMS
        rows = self._rows(sql, (base.user_id_list(user_ids),))
        return [r[0] for r in rows]

    @guarded("read")
    def users_items_weighed(
        self, user_ids: Sequence[str], signal: Signal
    ) -> list[tuple[list[str], list[str]]]:
        """One round trip for the group, as ``users_items``."""
        constant, by_value = map(list, signal)  # lists: psycopg sends a tuple as a record
        params = {"users": base.user_id_list(user_ids), "constant": constant, "by_value": by_value}
        return [(items, unliked) for items, unliked in self._rows(_USERS_ITEMS_WEIGHED, params)]

    @guarded("write")
    def upsert_items(self, items: Sequence[Item]) -> int:
        now = time.time_ns() // 1000
        self._many(_UPSERT_ITEM, [base.item_row(item, now) for item in items])
        return len(items)

    @guarded("read")
    def get_item(self, item_id: str) -> Item | None:
        rows = self._rows(f"SELECT {_ITEM_SELECT} FROM items WHERE item_id = %s", (item_id,))
        return base.item_from_row(rows[0]) if rows else None

    @guarded("read")
    def items(self) -> list[Item]:
        rows = self._rows(f"SELECT {_ITEM_SELECT} FROM items ORDER BY item_id")
        return [base.item_from_row(r) for r in rows]

    @guarded("read")
    def items_changed_since(
        self, since_us: int, skip: Mapping[str, int] | None = None
    ) -> list[tuple[Item, int]]:
        rows = self._rows(
            f"SELECT {_ITEM_SELECT}, updated_at FROM items WHERE updated_at >= %s", (since_us,)
        )
        skip = skip or {}
        return [(base.item_from_row(r), int(r[7])) for r in rows if skip.get(r[0]) != r[7]]

    @guarded("write")
    def upsert_users(self, users: Sequence[User]) -> int:
        now = time.time_ns() // 1000
        self._many(
            "INSERT INTO users VALUES (%s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET "
            "properties = EXCLUDED.properties, updated_at = EXCLUDED.updated_at",
            [(u.user_id, json.dumps(u.properties), now) for u in users],
        )
        return len(users)

    @guarded("read")
    def get_user(self, user_id: str) -> User | None:
        rows = self._rows("SELECT user_id, properties FROM users WHERE user_id = %s", (user_id,))
        return User(user_id=rows[0][0], properties=json.loads(rows[0][1])) if rows else None

    @guarded("read")
    def users(self) -> list[User]:
        rows = self._rows('SELECT user_id, properties FROM users ORDER BY user_id COLLATE "C"')
        return [User(user_id=r[0], properties=json.loads(r[1])) for r in rows]

    @guarded("write")
    def delete_user(self, user_id: str) -> int:
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM attributions WHERE event_id IN "
                "(SELECT event_id FROM events WHERE user_id = %s)",
                (user_id,),
            )
            removed = cur.execute("DELETE FROM events WHERE user_id = %s", (user_id,)).rowcount
            cur.execute("DELETE FROM users WHERE user_id = %s", (user_id,))
            cur.execute("DELETE FROM decisions WHERE unit = %s", (user_id,))
        return max(int(removed), 0)

    # --- erasure --- (``recsmith.privacy``; see ``SQLiteStore``)

    def _privacy_tables(self, *, create: bool = True) -> bool:
        """Whether the privacy tables exist, creating them first unless ``create`` is False.
        Created on first use, not in ``_SCHEMA``: that schema's newest-table marker would skip
        them in a database created before them. Readers never create them: a hot standby (or a
        read-only database) serves reads and cannot run DDL, and no tables means no marks."""
        if getattr(self, "_privacy_ready", False):
            return True
        with self._tx() as cur:
            exists = cur.execute(_PRIVACY_NEWEST).fetchone() == (True,)
            if not exists and create:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PRIVACY_LOCK,))
                cur.execute(_PRIVACY_SCHEMA)
        self._privacy_ready = exists or create
        return self._privacy_ready

    @guarded("write")
    def privacy_salt(self) -> bytes:
        """Read, and written only the first time (a standby gets it too)."""
        self._privacy_tables()
        found = self._rows("SELECT salt FROM privacy_salt")
        if not found:
            with self._tx() as cur:
                cur.execute(
                    "INSERT INTO privacy_salt VALUES (1, %s) ON CONFLICT (id) DO NOTHING",
                    (secrets.token_hex(32),),
                )
                found = cur.execute("SELECT salt FROM privacy_salt").fetchall()
        return bytes.fromhex(found[0][0])

    @guarded("read")
    def privacy_marks(self, since_us: int = 0) -> list[Mark]:
        if not self._privacy_tables(create=False):
            return []
        query = f"SELECT {_MARK_SELECT} FROM privacy_marks WHERE updated_at >= %s"
        return [mark_from_row(row) for row in self._rows(query, (since_us,))]

    @guarded("write")
    def set_privacy_mark(self, mark: Mark) -> None:
        self._privacy_tables()
        self._many(_UPSERT_MARK, [mark_row(mark, time.time_ns() // 1000)])

    @guarded("write")
    def erase_person(self, user_id: str, mark: Mark) -> dict[str, int]:
        self._privacy_tables()
        counts: dict[str, int] = {}
        with self._tx() as cur:
            for query in person_queries(cur.execute, "%s", user_id):
                removed = query.run(cur.execute, user_id)
                counts[query.kind] = counts.get(query.kind, 0) + removed
            once, twice = search_texts(user_id)
            candidates = cur.execute(_DEAD_LETTERS_NAMING, (once, twice, once)).fetchall()
            doomed = [r[0] for r in candidates if names_person(user_id, r[1], r[2])]
            cur.execute("DELETE FROM dead_letters WHERE id = ANY(%s)", (doomed,))
            counts["dead_letters"] = len(doomed)
            cur.execute(_UPSERT_MARK, mark_row(mark, time.time_ns() // 1000))
        return counts

    @guarded("read")
    def person_events(self, user_id: str) -> pd.DataFrame:
        query = f"SELECT {_EVENT_COLS} FROM events WHERE user_id = %s ORDER BY ts, event_id"
        return base.frame_from_rows(self._rows(query, (user_id,)))

    @guarded("read")
    def person_decisions(self, unit: str) -> list[Decision]:
        return [drows.decision_from_row(row) for row in self._rows(_PERSON_DECISIONS, (unit,))]

    @guarded("write")
    def delete_events_before(self, ts: datetime) -> int:
        """Drops the months wholly before ``ts``, deletes the rest (``partitions.purge_before``)."""
        with self._tx() as cur:
            removed = partitions.purge_before(cur, base.micros(ts), self._partition_key)
        self._months = set()  # some are gone: asked again at the next append
        return removed

    @guarded("write")
    def link_alias(self, alias: str, user_id: str, kind: str) -> tuple[str, str]:
        self._privacy_tables()
        with self._tx() as cur:
            # one link at a time: two logins of one device must not both find it free
            cur.execute("LOCK TABLE aliases IN SHARE ROW EXCLUSIVE MODE")
            return link_alias_in(cur.execute, "%s", alias, user_id, kind, time.time_ns() // 1000)

    @guarded("write")
    def unlink_alias(self, alias: str, user_id: str) -> bool:
        self._privacy_tables()
        with self._tx() as cur:
            return cur.execute(unlink_alias_sql("%s"), (alias, user_id)).rowcount > 0

    @guarded("read")
    def aliases_of(self, user_id: str) -> list[tuple[str, str, int]]:
        if not self._privacy_tables(create=False):
            return []
        return [(a, k, int(t)) for a, k, t in self._rows(aliases_of_sql("%s"), (user_id,))]

    @guarded("read")
    def alias_map(self) -> dict[str, str]:
        if not self._privacy_tables(create=False):
            return {}
        return dict(self._rows(ALIAS_MAP_SQL))

    @guarded("write")
    def delete_dead_letters_before(self, ts: datetime) -> int:
        with self._tx() as cur:
            query = "DELETE FROM dead_letters WHERE received_at < %s"
            return max(cur.execute(query, (base.micros(ts),)).rowcount, 0)

    # ---- decisions and attributions (``recsmith.decisions``; see ``SQLiteStore``) ---------

    @guarded("write")
    def append_decisions(self, decisions: Sequence[Decision]) -> int:
        if not decisions:
            return 0
        heads = drows.header_rows(decisions)
        with self._tx() as cur:
            cur.executemany(_INSERT_DECISION, heads)
            return cur.rowcount  # psycopg sums executemany's counts: a stored id adds 0

    @guarded("read")
    def get_decision(self, recommendation_id: str) -> Decision | None:
        found = self._rows(_GET_DECISION, (recommendation_id,))
        return drows.decision_from_row(found[0]) if found else None

    @guarded("read")
    def scan_decisions(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        lo, hi = base.scan_bounds(since, until)
        return drows.shown_frame(self._rows(drows.SCAN_SQL.format(p="%s"), (lo, hi)))

    @guarded("read")
    def count_decisions(self, since: datetime | None = None, until: datetime | None = None) -> int:
        found = self._rows(drows.COUNT_SQL.format(p="%s"), base.scan_bounds(since, until))
        return int(found[0][0])

    @guarded("read")
    def shown_in(self, recommendation_ids: Sequence[str]) -> pd.DataFrame:
        return drows.lookup_frame(self._rows(_SHOWN_IN, (list(recommendation_ids),)))

    @guarded("read")
    def shown_to(self, units: Sequence[str], since_us: int, until_us: int) -> pd.DataFrame:
        found = self._rows(_SHOWN_TO, (list(units), since_us, until_us))
        return drows.lookup_frame(found)

    @guarded("read")
    def shows_of(
        self, unit: str, since_us: int, until_us: int
    ) -> list[tuple[str, str, int, str | None]]:
        return self._rows(_SHOWS_OF, (unit, since_us, until_us))

    @guarded("write")
    def delete_decisions_before(self, ts: datetime) -> int:
        cutoff = base.micros(ts)
        with self._tx() as cur:
            removed = cur.execute("DELETE FROM decisions WHERE served_at < %s", (cutoff,)).rowcount
            cur.execute("DELETE FROM attributions WHERE ts < %s", (cutoff,))
            minute = cutoff // drows.MICROS_PER_MINUTE
            cur.execute("DELETE FROM experiment_requests WHERE minute < %s", (minute,))
        return max(int(removed), 0)

    @guarded("read")
    def decision_latencies(
        self, experiment: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        lo, hi = base.scan_bounds(since, until)
        found = self._rows(drows.LATENCY_SQL.format(p="%s"), (experiment, lo, hi))
        return drows.latency_frame(found)

    @guarded("write")
    def add_request_counts(self, counts: Sequence[tuple[Any, ...]]) -> None:
        if counts:
            self._many(drows.UPSERT_REQUESTS_SQL.format(p="%s"), list(counts))

    @guarded("read")
    def request_counts(
        self, experiment: str, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        first, last = drows.minute_bounds(*base.scan_bounds(since, until))
        found = self._rows(drows.REQUESTS_SQL.format(p="%s"), (experiment, first, last))
        return drows.request_frame(found)

    # --- bandit state ---

    @guarded("write")
    def add_arm_counts(self, counts: Sequence[tuple[str, int, int, int]]) -> None:
        self._many(arm_rows.UPSERT_ARMS_SQL.format(p="%s"), list(counts))

    @guarded("read")
    def arm_counts(self, version: int = 0) -> ArmCounts:
        return arm_rows.arm_counts(self._rows(arm_rows.SELECT_ARMS_SQL, ()), version)

    @guarded("write")
    def add_linear_cells(self, cells: Sequence[tuple[str, str, int, float]]) -> None:
        self._many(linear_rows.UPSERT_CELLS_SQL.format(p="%s"), list(cells))

    @guarded("read")
    def linear_cells(self, model: str) -> list[tuple[str, int, float]]:
        found = self._rows(linear_rows.SELECT_CELLS_SQL.format(p="%s"), (model,))
        return [tuple(r) for r in found]

    @guarded("write")
    def append_attributions(self, attributions: pd.DataFrame) -> int:
        if len(attributions) == 0:
            return 0
        self._many(_INSERT_ATTRIBUTION, drows.attribution_rows(attributions))
        return len(attributions)

    @guarded("read")
    def scan_attributions(self, since: datetime | None = None) -> pd.DataFrame:
        lo, _ = base.scan_bounds(since, None)
        query = f"SELECT {', '.join(drows.ATTRIBUTION_COLUMNS)} FROM attributions WHERE ts >= %s"
        return drows.attribution_frame(self._rows(query, (lo,)))

    # --- audit ---

    @guarded("write")
    def append_audit(self, records: Sequence[AuditRecord]) -> None:
        marks = ", ".join(["%s"] * len(AUDIT_COLUMNS))
        self._many(
            f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES ({marks})",
            [audit_row(r) for r in records],
        )

    @guarded("read")
    def scan_audit(
        self, since: datetime | None = None, action: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        query, params = scan_audit_query(since, action, limit, "%s")
        return [audit_from_row(r) for r in reversed(self._rows(query, params))]

    # --- dead letters ---

    @guarded("write")
    def add_dead_letters(self, rejections: Sequence[Rejection], source: str) -> None:
        """Store the rejections (payloads capped) and, at most once per ``prune_every_s``,
        delete dead letters past their retention in the same transaction."""
        if not rejections:
            return
        now, policy = time.time_ns() // 1000, self.dead_letter_policy
        rows = dead_letter_rows(rejections, source, now, policy.max_payload_bytes)
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (received_at, source, record_index, errors, payload) "
                "VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
            if self._prune.due():
                cutoff = now - int(policy.retention_s * 1_000_000)
                cur.execute("DELETE FROM dead_letters WHERE received_at < %s", (cutoff,))

    @guarded("read")
    def dead_letters(
        self,
        limit: int = 100,
        *,
        since: datetime | None = None,
        reason: str | None = None,
        after_id: int = 0,
    ) -> list[DeadLetter]:
        query, params = base.dead_letter_query(limit, since, reason, after_id, "strpos(%s, %s) > 0")
        return [base.dead_letter_from_row(r) for r in self._rows(query, params)]

    @guarded("read")
    def dead_letter_summary(self, since: datetime, latest: int) -> tuple[int, list[DeadLetter]]:
        count, newest = base.dead_letter_summary_queries("%s")
        start = base.micros(since)
        total = int(self._rows(count, (start,))[0][0])
        rows = self._rows(newest, (start, latest))
        return total, [base.dead_letter_from_row(r) for r in rows]

    @guarded("write")
    def delete_dead_letters(self, letter_ids: Sequence[int]) -> int:
        with self._tx() as cur:
            cur.execute("DELETE FROM dead_letters WHERE id = ANY(%s)", (list(letter_ids),))
            return cur.rowcount

    @guarded("read")
    def dead_letter_sources(self, sources: Sequence[str]) -> set[str]:
        query = "SELECT DISTINCT source FROM dead_letters WHERE source = ANY(%s)"
        return {row[0] for row in self._rows(query, (list(sources),))}

    # --- keys ---

    @guarded("write")
    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        marks = ", ".join(["%s"] * (len(base.API_KEY_COLUMNS) + 1))
        self._many(
            f"INSERT INTO api_keys (key_hash, {', '.join(base.API_KEY_COLUMNS)}) VALUES ({marks})",
            [(key_hash, *base.api_key_row(key))],
        )

    @guarded("read")
    def find_api_key(self, key_hash: str) -> ApiKey | None:
        rows = self._rows(f"{_KEY_SELECT} WHERE key_hash = %s", (key_hash,))
        return base.api_key_from_row(rows[0]) if rows else None

    @guarded("read")
    def api_keys(self) -> list[ApiKey]:
        rows = self._rows(f"{_KEY_SELECT} ORDER BY created_at, key_id")
        return [base.api_key_from_row(r) for r in rows]

    @guarded("write")
    def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey | None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE api_keys SET revoked = TRUE, revoked_at = %s "
                "WHERE key_id = %s AND NOT revoked",
                (base.micros(at), key_id),
            )
            row = cur.execute(f"{_KEY_SELECT} WHERE key_id = %s", (key_id,)).fetchone()
        return None if row is None else base.api_key_from_row(row)

    # --- live business rules (``recsmith.merchandising``) ---

    def _rule_table(self, *, create: bool = True) -> bool:
        """Whether ``rule_sets`` exists, creating it unless ``create`` is False."""
        return self._table_on_use("rule_sets", _RULES_LOCK, rule_rows.POSTGRES_SCHEMA, create)

    def _table_on_use(self, table: str, lock: int, schema: str, create: bool) -> bool:
        """Whether ``table`` exists, creating it (``schema``, under advisory ``lock``) unless
        ``create`` is False: on first use, as ``_privacy_tables`` and for the same reasons
        (readers never run DDL)."""
        ready: set[str] = self.__dict__.setdefault("_tables_ready", set())
        if table in ready:
            return True
        with self._tx() as cur:
            exists = cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
            if exists != (True,) and create:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
                cur.execute(schema)
        if exists == (True,) or create:
            ready.add(table)
        return table in ready

    # --- sampled ranker features (``monitoring.features``) ---

    def _feature_table(self, *, create: bool = True) -> bool:
        return self._table_on_use(
            "feature_samples", _FEATURES_LOCK, feature_rows.POSTGRES_SCHEMA, create
        )

    @guarded("write")
    def append_feature_samples(self, rows: Sequence[tuple[str, int, bytes]]) -> int:
        if not rows:
            return 0
        self._feature_table()
        self._many(feature_rows.INSERT_SQL.format(p="%s"), rows)
        return len(rows)

    @guarded("read")
    def feature_samples(self, release: str, since_us: int) -> list[bytes]:
        if not self._feature_table(create=False):
            return []
        found = self._rows(feature_rows.SELECT_SQL.format(p="%s"), (release, since_us))
        return [bytes(r[0]) for r in found]

    @guarded("write")
    def trim_feature_samples(self, before_us: int, keep: int) -> int:
        if not self._feature_table(create=False):
            return 0
        with self._tx() as cur:
            return int(
                cur.execute(feature_rows.TRIM_SQL.format(p="%s"), (before_us, keep)).rowcount
            )

    @guarded("write")
    def add_rule_set(self, document: str, set_by: str | None, at_us: int) -> int:
        self._rule_table()
        with self._tx() as cur:
            cur.execute("LOCK TABLE rule_sets IN EXCLUSIVE MODE")  # one next version at a time
            found = cur.execute(rule_rows.INSERT_SQL.format(p="%s"), (document, set_by, at_us))
            return int(found.fetchone()[0])

    @guarded("read")
    def rule_set_version(self) -> int:
        if not self._rule_table(create=False):
            return 0
        return int(self._rows(rule_rows.VERSION_SQL)[0][0])

    @guarded("read")
    def rule_sets(self, limit: int = 1, version: int | None = None) -> list[tuple[Any, ...]]:
        if not self._rule_table(create=False):
            return []
        if version is not None:
            return self._rows(rule_rows.ONE_SQL.format(p="%s"), (version,))
        return self._rows(rule_rows.LATEST_SQL.format(p="%s"), (limit,))

    def ping(self) -> bool:
        try:
            self._read_heartbeat()
        except StoreUnavailable:
            return False
        return True

    @guarded("read")
    def _read_heartbeat(self) -> None:
        """A read that touches the schema (``SELECT 1`` does not)."""
        self._rows("SELECT at FROM heartbeat")

    @guarded("heartbeat")
    def heartbeat(self) -> None:
        self._many(
            "INSERT INTO heartbeat VALUES (1, %s) ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at",
            [(time.time_ns() // 1000,)],
        )

    def bulk_load(self) -> AbstractContextManager[None]:
        """See ``EventStore.bulk_load``; ``_create_schema`` builds the dropped indexes again,
        and so does a process connecting after a killed import (``_create_tables``)."""
        return base.indexes_deferred(self)

    @guarded("write")
    def _defer_event_indexes(self) -> bool:
        with self._tx() as cur:
            if cur.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None:
                return False
            deferred = (*base.DEFERRED_EVENT_INDEXES, *partitions.DEFERRED_INDEX_NAMES)
            cur.execute(f"DROP INDEX IF EXISTS {', '.join(deferred)}")
        return True

    def writer_turn(self) -> AbstractContextManager[None]:
        """No turn: PostgreSQL commits concurrent transactions in parallel (row locks only)."""
        return nullcontext()

    def close_thread(self) -> None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None:
            self._drop(conn)

    def close(self) -> None:
        with self._lock:
            for conn, _ in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
