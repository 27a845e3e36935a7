"""A failing store is a 503 with a JSON body, reads degrade, and no error escapes the app.

The store is a real PostgreSQL reached through a TCP forwarder the test closes (the database
"goes down": connections reset, new ones refused) and opens again. Keep-alive is checked on a
real uvicorn server: a failing request and the next one must use the same TCP connection.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from recsmith.bundle import ModelBundle
from recsmith.config import Settings
from recsmith.errors import StoreUnavailable
from recsmith.serving import create_api_key, create_app
from recsmith.serving.auth import KeyCache
from recsmith.testing.tcp_forwarder import TcpForwarder

if TYPE_CHECKING:
    from recsmith.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres

BASE_URL = os.environ.get("RECSMITH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("RECSMITH_REQUIRE_POSTGRES") == "1"
OUTAGE_LOG = "recsmith.store.outage"


@pytest.fixture
def forwarder() -> Iterator[TcpForwarder]:
    """A forwarder to the test PostgreSQL server (skipped, or failed when required, without
    one)."""
    try:
        import psycopg

        psycopg.connect(BASE_URL, connect_timeout=5).close()
    except Exception as exc:
        if REQUIRED:
            pytest.fail(f"PostgreSQL at {BASE_URL} unavailable: {exc}")
        pytest.skip(f"PostgreSQL at {BASE_URL} unavailable: {exc}")
    parts = urlsplit(BASE_URL)
    with TcpForwarder((parts.hostname or "127.0.0.1", parts.port or 5432)) as opened:
        yield opened


@pytest.fixture
def pg_store(forwarder: TcpForwarder) -> Iterator[PostgresStore]:
    """A store in a schema of its own, reached through ``forwarder``."""
    import psycopg
    from psycopg import sql

    from recsmith.store.postgres import PostgresStore

    parts = urlsplit(BASE_URL)
    schema = f"t_{uuid.uuid4().hex}"
    netloc = f"{parts.username}@127.0.0.1:{forwarder.port}"
    url = parts._replace(netloc=netloc, query=f"connect_timeout=2&schema={schema}").geturl()
    store = PostgresStore(url)
    yield store
    store.close()
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _headers(store: PostgresStore) -> dict[str, str]:
    _, secret = create_api_key(store, "outage", ["read", "ingest"])
    return {"Authorization": f"Bearer {secret}"}


def _event(n: int) -> dict[str, Any]:
    return {
        "event_id": f"outage-{n}",
        "user_id": "u1",
        "item_id": "i1",
        "event_type": "view",
        "timestamp": time.time() - 60,
    }


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOG]


def test_a_store_outage_is_a_503_and_reads_degrade(
    settings: Settings,
    bundle: ModelBundle,
    pg_store: PostgresStore,
    forwarder: TcpForwarder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    headers = _headers(pg_store)
    app = create_app(settings, bundle=bundle, store=pg_store)
    with TestClient(app) as client:
        # every lookup goes to the store: a key seen before must outlive its TTL in an outage
        app.state.runtime = replace(app.state.runtime, keys=KeyCache(pg_store, ttl=0.0))
        assert client.post("/v1/events", json=[_event(0)], headers=headers).status_code == 200
        before = client.get("/v1/users/u1/recommendations", headers=headers)
        assert before.status_code == 200 and before.json()["degraded"] == []
        assert "i1" not in [item["item_id"] for item in before.json()["items"]]
        assert client.get("/health/ready").status_code == 200

        forwarder.close()
        for n in range(1, 6):
            down = client.post("/v1/events", json=[_event(n)], headers=headers)
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/json"
            assert down.headers["retry-after"] == "5"
            assert down.json()["detail"] == "the event store is unavailable; retry later"
            assert "connection" in down.json()["cause"].lower()
        put = client.put("/v1/items/i1", json={"categories": ["a"]}, headers=headers)
        assert put.status_code == 503 and "cause" in put.json()

        degraded = client.get("/v1/users/u1/recommendations", headers=headers)
        assert degraded.status_code == 200
        assert degraded.json()["degraded"] == ["store"]
        assert len(degraded.json()["items"]) == 10  # from the model in memory
        unknown = {"Authorization": "Bearer rsk_0000_unknown"}
        assert client.get("/v1/users/u1/recommendations", headers=unknown).status_code == 503

        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["store", "store_writes"]
        assert ready.json()["degraded"] == ["store"]
        assert 'recsmith_degraded{component="store"} 1.0' in client.get("/metrics").text

        forwarder.open()
        back = client.get("/v1/users/u1/recommendations", headers=headers)
        assert back.json()["degraded"] == []
        assert client.post("/v1/events", json=[_event(9)], headers=headers).status_code == 200
        assert client.get("/health/ready").status_code == 200
        assert 'recsmith_degraded{component="store"} 0.0' in client.get("/metrics").text
    lines = _outage_lines(caplog)
    assert len(lines) == 2, lines
    assert "unavailable" in lines[0] and "is back" in lines[1]
    assert all("\n" not in line for line in lines)
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"


def test_ready_is_503_while_the_store_refuses_writes(
    settings: Settings, bundle: ModelBundle, pg_store: PostgresStore
) -> None:
    """Reads answer while every write fails (a read-only server, as a full disk does):
    readiness used to say 200 because it only read."""
    from recsmith.store.postgres import PostgresStore as Store

    pg_store.heartbeat()  # the tables exist: a read-only session could not create them
    read_only = Store(f"{pg_store.url}&options=-c%20default_transaction_read_only%3Don")
    try:
        with TestClient(create_app(settings, bundle=bundle, store=read_only)) as client:
            ready = client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["failed"] == ["store_writes"]
            assert ready.json()["degraded"] == []
            write = client.post("/v1/events", json=[_event(1)], headers=_headers(pg_store))
            assert write.status_code == 503
            assert "read-only" in write.json()["cause"]
    finally:
        read_only.close()


class _Server:
    """``app`` served by a real uvicorn on a free port, in a thread of this process."""

    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def _client_port(response: httpx.Response) -> int:
    """The client side's port of the TCP connection that carried ``response``."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_failing_requests_keep_the_connection_usable(
    settings: Settings,
    bundle: ModelBundle,
    pg_store: PostgresStore,
    forwarder: TcpForwarder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = _headers(pg_store)
    app = create_app(settings, bundle=bundle, store=pg_store)

    def broken() -> None:
        raise RuntimeError("a bug in a handler")

    app.add_api_route("/broken", broken)
    with _Server(app) as base, httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        bug = http.get("/broken")
        assert bug.status_code == 500
        assert bug.headers["content-type"] == "application/json"
        error_id = bug.json()["error_id"]
        assert bug.json()["detail"] == "internal server error"
        fine = http.get("/v1/users/u1/recommendations")
        assert fine.status_code == 200
        assert _client_port(fine) == _client_port(bug)

        forwarder.close()
        down = http.post("/v1/events", json=[_event(1)])
        assert down.status_code == 503 and down.json()["cause"]
        degraded = http.get("/v1/users/u1/recommendations")
        assert degraded.status_code == 200 and degraded.json()["degraded"] == ["store"]
        assert _client_port(down) == _client_port(degraded) == _client_port(bug)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]
    assert error_id in tracebacks[0].getMessage()


def test_after_an_outage_no_thread_fails_again_on_a_connection_it_kept(
    pg_store: PostgresStore, forwarder: TcpForwarder, caplog: pytest.LogCaptureFixture
) -> None:
    """Each thread keeps a connection; when the server goes away all of them die, but a thread
    learns it only at its next call. One thread finding its connection broken must retire the
    others' too: the flaky failure this replaces was a worker thread failing on its stale
    connection after the store was back, logging a second outage and failing readiness."""
    caplog.set_level(logging.INFO)
    pg_store.heartbeat()  # this thread's connection
    with ThreadPoolExecutor(max_workers=1) as worker:  # one thread: it keeps its connection
        assert worker.submit(pg_store.count_events).result() == 0
        forwarder.close()
        with pytest.raises(StoreUnavailable):
            pg_store.heartbeat()  # this thread finds the outage
        forwarder.open()
        pg_store.heartbeat()  # back: this thread reconnects
        assert worker.submit(pg_store.count_events).result() == 0  # not on its dead connection
    lines = _outage_lines(caplog)
    assert len(lines) == 2, lines
    assert "unavailable" in lines[0] and "is back" in lines[1]
