"""Stores written before keys had revocation and expiry times: opened by this version, their keys
keep working (a revoked one stays revoked, with no time) and gain the new columns."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsmith.store.base import EventStore
from recsmith.store.open import open_store
from recsmith.testing.backends import postgres_url_or_skip

#: ``api_keys`` as the first release created it.
OLD_TABLE = (
    "CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, "
    "name TEXT NOT NULL, scopes TEXT NOT NULL, created_at BIGINT NOT NULL, revoked {kind})"
)
OLD_ROWS = (
    "INSERT INTO api_keys VALUES ('old1', 'h1', 'ci', 'read,ingest', 1700000000000000, {no}), "
    "('old2', 'h2', 'gone', 'admin', 1700000000000000, {yes})"
)


def check_old_keys_work(store: EventStore) -> None:
    live, gone = store.find_api_key("h1"), store.find_api_key("h2")
    assert live is not None and gone is not None
    assert (live.scopes, live.revoked, live.expires_at) == (("read", "ingest"), False, None)
    assert (gone.revoked, gone.revoked_at) == (True, None)  # revoked before times were kept
    assert live.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    revoked = store.revoke_api_key("old1", at)
    assert revoked is not None and (revoked.revoked, revoked.revoked_at) == (True, at)
    assert [k.key_id for k in store.api_keys()] == ["old1", "old2"]


def test_an_old_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_TABLE.format(kind="INTEGER NOT NULL DEFAULT 0"))
        conn.execute(OLD_ROWS.format(no=0, yes=1))
    store = open_store(f"sqlite:///{path}")
    try:
        check_old_keys_work(store)
    finally:
        store.close()


@pytest.mark.parametrize("marked", [False, True])
def test_an_old_postgres_store(marked: bool) -> None:
    """``marked``: the schema marker (``audit_log``) exists already, as in a database created by
    a build between the audit trail and these columns: the first query that misses a column
    creates them and is retried."""
    import psycopg
    from psycopg import sql

    server = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(f"SET search_path = {schema}")
        conn.execute(OLD_TABLE.format(kind="BOOLEAN NOT NULL DEFAULT FALSE"))
        conn.execute(OLD_ROWS.format(no="FALSE", yes="TRUE"))
        if marked:
            conn.execute(
                "CREATE TABLE audit_log (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "at BIGINT NOT NULL, key_id TEXT, key_name TEXT, action TEXT NOT NULL, "
                "target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL)"
            )
    store = open_store(f"{server}{'&' if '?' in server else '?'}schema={schema}")
    try:
        check_old_keys_work(store)
    finally:
        store.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
