"""How the JetStream adapter's release, failed ack and empty fetch behave on a real server:
a released batch waits ``RELEASE_DELAY_S`` then comes back, an ack to a deleted durable fails at
once as a broker error, and a fetch whose deadline runs out is empty, never a failure."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from recsmith.streaming.broker import StreamMessage
from recsmith.streaming.nats_jetstream import RELEASE_DELAY_S, JetStreamBroker
from recsmith.testing.backends import nats_url_or_skip
from recsmith.testing.streams import ScratchStream

pytestmark = pytest.mark.nats


@pytest.fixture
def nats_stream() -> Iterator[ScratchStream]:
    made = ScratchStream("nats", nats_url_or_skip())
    try:
        yield made
    finally:
        made.delete()


@pytest.fixture
def broker(nats_stream: ScratchStream) -> Iterator[JetStreamBroker]:
    made = nats_stream.broker("c1", claim_idle_s=30)
    assert isinstance(made, JetStreamBroker)
    try:
        yield made
    finally:
        made.close()


def _publish_and_fetch(
    stream: ScratchStream, broker: JetStreamBroker, n: int
) -> list[StreamMessage]:
    ids = stream.publish([("event", json.dumps({"event_id": f"e{i}"}).encode()) for i in range(n)])
    got: list[StreamMessage] = []
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        got += broker.fetch(n - len(got), 0.5)
    assert sorted(m.id for m in got) == sorted(ids)
    return got


def test_a_released_batch_stays_pending_then_comes_back_after_the_delay(
    nats_stream: ScratchStream, broker: JetStreamBroker
) -> None:
    """The -NAK carries the delay: nothing of the batch comes back sooner than ``RELEASE_DELAY_S``
    after ``release`` was called (a fetch that returns any of it returns later than that, however
    loaded the machine), and meanwhile the lag still counts all of it owed to the group."""
    batch = _publish_and_fetch(nats_stream, broker, 5)
    sent = time.monotonic()
    broker.release(batch)
    assert (broker.lag().pending, broker.lag().unconsumed) == (5, 0)  # not acked, not lost
    again: list[StreamMessage] = []
    while len(again) < 5 and time.monotonic() < sent + 20:
        got = broker.fetch(5 - len(again), 0.2)
        if got:
            assert time.monotonic() - sent >= RELEASE_DELAY_S, "redelivered before the delay"
        again += got
    assert sorted(m.id for m in again) == sorted(m.id for m in batch)
    assert all(m.redelivered for m in again)
    broker.ack(again)
    assert (broker.lag().pending, broker.lag().unconsumed) == (0, 0)


def test_an_ack_to_a_deleted_durable_fails_at_once_as_a_broker_error(
    nats_stream: ScratchStream, broker: JetStreamBroker
) -> None:
    """Its confirmation has no one to answer it: ``NoRespondersError`` straight away (not after
    ``SETTLE_TIMEOUT_S``), a broker error the consumer loop logs and counts."""
    import nats
    from nats.errors import NoRespondersError

    batch = _publish_and_fetch(nats_stream, broker, 3)

    async def delete_durable() -> None:
        nc = await nats.connect(nats_stream.url)
        try:
            await nc.jetstream().delete_consumer(nats_stream.name, nats_stream.group)
        finally:
            await nc.close()

    asyncio.run(delete_durable())
    started = time.monotonic()
    with pytest.raises(NoRespondersError) as failed:
        broker.ack(batch)
    assert isinstance(failed.value, broker.errors)
    assert time.monotonic() - started < 5  # SETTLE_TIMEOUT_S is 10


def test_a_fetch_whose_deadline_runs_out_is_empty_not_a_failure(broker: JetStreamBroker) -> None:
    """With nothing to fetch and the shortest wait, nats-py 2.16 raises a bare TimeoutError in
    about 1 fetch of 70 here (its deadline runs out between its probe and its waiting request);
    every one of them must read as an empty fetch."""
    for _ in range(400):
        assert broker.fetch(5, 0.0) == []
