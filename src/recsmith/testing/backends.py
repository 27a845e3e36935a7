"""Empty stores of each backend for tests that must hold on SQLite and PostgreSQL alike.

``open_backend("postgres", …)`` takes the server from ``RECSMITH_TEST_POSTGRES_URL`` and a schema
of its own (dropped afterwards); without a server it skips, unless ``RECSMITH_REQUIRE_POSTGRES=1``
(CI), where a missing server fails, so a broken service never turns a suite into skips.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from recsmith.store.base import EventStore

BACKENDS = ("sqlite", "postgres")
POSTGRES_URL = os.environ.get(
    "RECSMITH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_url_or_skip() -> str:
    """The test server's URL once it answered; a skip (or failure when required) otherwise."""
    try:
        import psycopg

        psycopg.connect(POSTGRES_URL, connect_timeout=5).close()
    except Exception as exc:  # ImportError as much as a refused connection
        message = f"PostgreSQL at {POSTGRES_URL} unavailable: {exc}"
        if os.environ.get("RECSMITH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message} (RECSMITH_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    return POSTGRES_URL


def redis_url_or_skip() -> str:
    """The Redis test server's URL (``RECSMITH_TEST_REDIS_URL``, default database 15) once it
    answered; a skip (or failure with ``RECSMITH_REQUIRE_REDIS=1``) otherwise."""
    import redis

    url = os.environ.get("RECSMITH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        if os.environ.get("RECSMITH_REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis required but unreachable at {url}: {exc}")
        pytest.skip(f"no Redis at {url}")
    return url


def nats_url_or_skip() -> str:
    """The NATS (JetStream) test server's URL (``RECSMITH_TEST_NATS_URL``) once it answered with
    JetStream on; a skip (or failure with ``RECSMITH_REQUIRE_NATS=1``) otherwise."""
    import asyncio

    url = os.environ.get("RECSMITH_TEST_NATS_URL", "nats://127.0.0.1:4222")

    async def probe() -> None:
        import nats

        async def quiet(_: Exception) -> None:  # the skip says why; no traceback per try
            return None

        nc = await nats.connect(
            url,
            connect_timeout=2,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=quiet,
        )
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), 10))
    except Exception as exc:  # ImportError as much as a refused connection
        if os.environ.get("RECSMITH_REQUIRE_NATS") == "1":
            pytest.fail(f"NATS JetStream required but unavailable at {url}: {exc}")
        pytest.skip(f"no NATS JetStream at {url}: {exc}")
    return url


@contextmanager
def open_backend(kind: str, workdir: Path) -> Iterator[tuple[EventStore, str]]:
    """An empty store of ``kind`` and its URL, closed (and its schema dropped) afterwards."""
    if kind == "sqlite":
        from recsmith.store.sqlite import SQLiteStore

        path = workdir / "store.sqlite"
        sqlite = SQLiteStore(path)
        try:
            yield sqlite, f"sqlite:///{path}"
        finally:
            sqlite.close()
        return
    import psycopg
    from psycopg import sql

    from recsmith.store.postgres import PostgresStore

    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex}"
    url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    store = PostgresStore(url)
    try:
        yield store, url
    finally:
        store.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
