"""PostgresStore against the shared EventStore contract, each test in a schema of its own.

The server comes from ``RECSMITH_TEST_POSTGRES_URL``. Without a server these tests skip, except when
``RECSMITH_REQUIRE_POSTGRES=1`` (CI with a database service): then a missing server is a failure,
so a broken service can never turn the PostgreSQL suite into a silent all-skip.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from recsmith.errors import StoreUnavailable, ValidationError
from recsmith.store.dead_letters import DeadLetterPolicy
from recsmith.testing.contracts import EventStoreContract, OpenWith, event, ingest

if TYPE_CHECKING:  # the driver is optional: import it only where a test needs it
    from recsmith.store.postgres import PostgresStore

BASE_URL = os.environ.get("RECSMITH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("RECSMITH_REQUIRE_POSTGRES") == "1"


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@pytest.fixture(scope="module")
def server() -> str:
    """The base URL once the server answered; skip (or fail when required) otherwise."""
    try:
        import psycopg

        psycopg.connect(BASE_URL, connect_timeout=5).close()
    except Exception as exc:  # ImportError as much as a refused connection
        message = f"PostgreSQL at {BASE_URL} unavailable: {exc}"
        if REQUIRED:
            pytest.fail(f"{message} (RECSMITH_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    return BASE_URL


def _drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def schema(server: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex}"
    yield name
    _drop_schema(server, name)


@pytest.fixture
def store(server: str, schema: str) -> Iterator[PostgresStore]:
    from recsmith.store.postgres import PostgresStore

    s = PostgresStore(_with_schema(server, schema))
    yield s
    s.close()


@pytest.fixture
def open_with(server: str) -> Iterator[OpenWith]:
    from recsmith.store.postgres import PostgresStore

    opened: list[tuple[PostgresStore, str]] = []

    def open_one(policy: DeadLetterPolicy) -> PostgresStore:
        schema = f"t_{uuid.uuid4().hex}"
        opened.append((PostgresStore(_with_schema(server, schema), policy), schema))
        return opened[-1][0]

    yield open_one
    for store, schema in opened:
        store.close()
        _drop_schema(server, schema)


@pytest.mark.postgres
class TestPostgresStore(EventStoreContract):
    """Every contract test, in a fresh schema per test."""

    def test_schemas_isolate_stores(self, server: str, store: PostgresStore, schema: str) -> None:
        from recsmith.store.postgres import PostgresStore as Store

        other_schema = f"t_{uuid.uuid4().hex}"
        other = Store(_with_schema(server, other_schema))
        try:
            ingest(store, [event("a", "only-here")])
            assert other.count_events() == 0
            assert other.ping() is True
        finally:
            other.close()
            _drop_schema(server, other_schema)

    def test_concurrent_first_use_creates_schema_once(self, server: str, schema: str) -> None:
        from recsmith.store.postgres import PostgresStore as Store

        stores = [Store(_with_schema(server, schema)) for _ in range(6)]
        errors: list[BaseException] = []
        start = threading.Barrier(len(stores))

        def first_use(s: PostgresStore) -> None:
            start.wait()
            try:
                assert s.count_events() == 0
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        assert errors == []

    def test_recovers_after_its_connection_is_killed(
        self, server: str, store: PostgresStore
    ) -> None:
        import psycopg

        ingest(store, [event("a")])
        pid = store._conn().info.backend_pid
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreUnavailable):
            store.count_events()
        assert store.count_events() == 1

    def test_url_options_are_kept_next_to_the_schema(self, server: str, schema: str) -> None:
        from recsmith.store.postgres import PostgresStore as Store

        url = _with_schema(f"{server}?options=-c%20statement_timeout%3D4321", schema)
        store = Store(url)
        try:
            assert store._rows("SHOW statement_timeout") == [("4321ms",)]
            assert store._rows("SHOW search_path") == [(schema,)]
            assert store._rows("SELECT current_schema()") == [(schema,)]
        finally:
            store.close()


def test_unreachable_server_pings_false_and_raises_store_unavailable() -> None:
    pytest.importorskip("psycopg")
    from recsmith.store.postgres import PostgresStore

    store = PostgresStore("postgresql://me:s3cret@127.0.0.1:1/nope?connect_timeout=2")
    assert store.ping() is False
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1") as info:
        store.count_events()
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in repr(store)


def test_bad_urls_are_validation_errors_naming_the_setting() -> None:
    pytest.importorskip("psycopg")
    from recsmith.store.postgres import PostgresStore

    with pytest.raises(ValidationError) as info:
        PostgresStore("postgresql://127.0.0.1/test?schema=x;drop")
    assert info.value.field == "store.url"
    with pytest.raises(ValidationError, match="bogus") as info:
        PostgresStore("postgresql://127.0.0.1/test?bogus=1")
    assert info.value.field == "store.url"


def test_dropped_schema_is_created_again(server: str, store: PostgresStore, schema: str) -> None:
    """The database (here: the schema) dropped and recreated under a running server: the store
    used to remember its tables for life, so every call failed until a restart."""
    ingest(store, [event("a", "e1")])
    _drop_schema(server, schema)
    assert store.count_events() == 0
    assert store.ping() is True
    assert ingest(store, [event("b", "e2")]).accepted == 1
    _drop_schema(server, schema)
    assert list(store.scan()) == []
    assert store.find_api_key("nope") is None


def test_one_dropped_table_is_created_again(server: str, store: PostgresStore) -> None:
    import psycopg

    ingest(store, [event("a", "e1")])
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP TABLE {store._schema}.events")
    assert store.count_events() == 0
    assert ingest(store, [event("b", "e2")]).accepted == 1


def test_a_read_only_database_fails_the_heartbeat_but_answers_reads(store: PostgresStore) -> None:
    store.heartbeat()
    conn = store._conn()
    conn.execute("SET default_transaction_read_only = on")  # as on a hot standby
    conn.commit()
    with pytest.raises(StoreUnavailable, match="read-only"):
        store.heartbeat()
    with pytest.raises(StoreUnavailable, match="read-only"):
        ingest(store, [event("a", "e1")])
    assert store.ping() is True
    assert store.outage.failing == {"heartbeat", "write"}


def test_an_outage_is_logged_when_it_starts_and_when_it_ends(
    server: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    from urllib.parse import urlsplit

    from recsmith.store.postgres import PostgresStore as Store
    from recsmith.testing.tcp_forwarder import TcpForwarder

    parts = urlsplit(server)
    with TcpForwarder((parts.hostname or "127.0.0.1", parts.port or 5432)) as forwarder:
        url = parts._replace(netloc=f"{parts.username}@127.0.0.1:{forwarder.port}").geturl()
        store = Store(_with_schema(f"{url}?connect_timeout=2", schema))
        try:
            ingest(store, [event("a", "e1")])
            forwarder.close()
            for _ in range(5):
                with pytest.raises(StoreUnavailable):
                    store.count_events()
                with pytest.raises(StoreUnavailable):
                    ingest(store, [event("b", "e2")])
            with pytest.raises(StoreUnavailable):
                store.heartbeat()
            assert store.ping() is False
            assert store.outage.failing == {"read", "heartbeat"}
            forwarder.open()
            assert store.count_events() == 1
            assert ingest(store, [event("b", "e2")]).accepted == 1
            store.heartbeat()
            assert store.outage.failing == set()
        finally:
            store.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "recsmith.store.outage"]
    assert len(lines) == 2, lines
    assert "unavailable" in lines[0] and "is back" in lines[1]
    assert not any(r.exc_info for r in caplog.records)


def test_contexts_by_id_sends_ids_as_one_text_and_refuses_one_holding_its_separator(
    store: PostgresStore,
) -> None:
    ingest(store, [event("i1", "a"), event("i2", "b", context={"k": 1})])
    assert store.contexts_by_id(["b", "a", "nope", "a"]) == {"a": None, "b": '{"k":1}'}
    # "a\x1fb" would split into "a" and "b": an error, not the contexts of two other events
    with pytest.raises(ValueError, match="control character"):
        store.contexts_by_id(["a\x1fb"])


@pytest.mark.postgres
def test_a_thread_that_ended_leaves_no_connection_open(server: str, schema: str) -> None:
    """A server's worker threads come and go (anyio ends one idle for 10 s): each reads through
    its own connection, and the connections of the ended ones are closed when a thread next
    connects, not kept open until the store closes (20 ended threads kept 20 open before).
    Counted on the server, by this store's own application name."""
    import psycopg

    from recsmith.store.postgres import PostgresStore as Store

    app = f"rs_{uuid.uuid4().hex[:12]}"
    store = Store(_with_schema(f"{server}?application_name={app}", schema))

    def open_on_server() -> int:
        with psycopg.connect(server, autocommit=True) as admin:
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            row = admin.execute(query, (app,)).fetchone()
        return int(row[0]) if row else 0

    try:
        for _ in range(20):
            reader = threading.Thread(target=store.count_events)
            reader.start()
            reader.join()
        assert open_on_server() == 1  # the last thread's: closed when another thread connects
        store.count_events()  # this thread connects: the last reader's is closed
        assert open_on_server() == 1
    finally:
        store.close()
    assert open_on_server() == 0


def test_a_thread_ending_while_orphans_are_closed_keeps_its_connection_reachable() -> None:
    """``_close_orphans`` reads each thread's ``is_alive`` once: a thread read alive and ending
    right after is kept (closed next time, or by ``close``), never dropped from ``_all`` open.
    The race made certain: a thread alive at its first read only (no server needed)."""
    from types import SimpleNamespace

    from recsmith.store.postgres import PostgresStore as Store

    class Connection:
        closed = False

        def close(self) -> None:
            self.closed = True

    class EndingThread(threading.Thread):
        reads = 0

        def is_alive(self) -> bool:
            self.reads += 1
            return self.reads == 1

    ending, ended = (Connection(), EndingThread()), (Connection(), EndingThread())
    ended[1].reads = 1  # read before: ended at this call
    store = SimpleNamespace(_all=[ending, ended])
    Store._close_orphans(store)  # type: ignore[arg-type]
    assert store._all == [ending] and not ending[0].closed  # still reachable by close()
    assert ended[0].closed
