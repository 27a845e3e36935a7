"""A store that goes down under a consumer: the batch it could not store is released, never
acknowledged, and stored once the store is back. The store is a real PostgreSQL reached through a
TCP forwarder the test closes (``recsmith.testing.tcp_forwarder``)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from recsmith.config import EventSettings
from recsmith.store.postgres import PostgresStore
from recsmith.streaming.consumer import StreamConsumer
from recsmith.testing.backends import postgres_url_or_skip
from recsmith.testing.tcp_forwarder import TcpForwarder


@pytest.fixture
def outage_store() -> Iterator[tuple[PostgresStore, TcpForwarder]]:
    """A store in a schema of its own, reached through a forwarder the test can close."""
    base = postgres_url_or_skip()
    parts = urlsplit(base)
    schema = f"t_{uuid.uuid4().hex}"
    with TcpForwarder((parts.hostname or "127.0.0.1", parts.port or 5432)) as forwarder:
        netloc = f"{parts.username}@127.0.0.1:{forwarder.port}"
        query = f"connect_timeout=2&schema={schema}"
        store = PostgresStore(parts._replace(netloc=netloc, query=query).geturl())
        try:
            yield store, forwarder
        finally:
            store.close()
            with psycopg.connect(base, autocommit=True) as conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(schema)))


def test_a_batch_the_store_refused_is_released_then_stored(stream, outage_store) -> None:
    store, forwarder = outage_store
    now = time.time()
    records = [
        {"event_id": f"o{n}", "user_id": "u1", "item_id": f"i{n}", "event_type": "view",
         "timestamp": now}
        for n in range(20)
    ]  # fmt: skip
    stream.publish([("event", json.dumps(r).encode()) for r in records])
    broker = stream.broker("c1", claim_idle_s=30)
    consumer = StreamConsumer(
        broker, store, EventSettings(), batch_size=50, wait_s=0.5, retry_after_s=0.1
    )
    forwarder.close()
    got = 0
    while not got:  # JetStream may hand over the backlog in more than one fetch
        assert consumer.step() == 0
        got = consumer.totals.store_failures
    assert consumer.totals.acked == 0
    assert broker.lag().pending + (broker.lag().unconsumed or 0) == 20  # nothing acknowledged
    assert consumer.metrics.registry.get_sample_value("recsmith_stream_store_failures_total") >= 1

    forwarder.open()
    totals = consumer.run(threading.Event(), until_drained=True)  # released is still pending
    assert totals.events_stored == totals.acked == 20 == store.count_events()
    assert broker.lag().drained
    broker.close()
