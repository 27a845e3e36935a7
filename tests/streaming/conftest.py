"""A stream of a unique name on each real broker (Redis Streams, NATS JetStream), for tests that
must hold on both: publish to it, build its adapter, name it on the command line, delete it after.

Without a broker the tests skip, unless ``RECSMITH_REQUIRE_REDIS=1`` / ``RECSMITH_REQUIRE_NATS=1``
(CI), where a missing broker fails them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from recsmith.streaming.broker import Broker
from recsmith.testing.backends import nats_url_or_skip, redis_url_or_skip

BROKERS = ("redis", "nats")


class TestStream:
    """One stream on one broker, and its consumer group (Redis group, JetStream durable)."""

    __test__ = False  # not a test class

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.url = url
        self.name = f"t-{uuid.uuid4().hex[:12]}"
        self.group = "g"
        self.label = f"{kind}/{self.name}"
        if kind == "nats":
            asyncio.run(self._nats(lambda js: js.add_stream(name=self.name, subjects=[self.name])))

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> list[str]:
        """(kind, body) each as one message; their ids in the stream, in order."""
        if self.kind == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            pipe = client.pipeline(transaction=False)
            for kind, body in messages:
                pipe.xadd(self.name, {kind: body})
            ids = [i.decode() for i in pipe.execute()]
            client.close()
            return ids

        async def send(js: Any) -> list[str]:
            acks = [
                await js.publish(self.name, body, headers={"Recsmith-Kind": kind})
                for kind, body in messages
            ]
            return [str(ack.seq) for ack in acks]

        return asyncio.run(self._nats(send))

    def broker(self, consumer: str, claim_idle_s: float) -> Broker:
        if self.kind == "redis":
            from recsmith.streaming.redis_streams import RedisStreamBroker

            return RedisStreamBroker(
                self.url, self.name, self.group, consumer, claim_idle_s=claim_idle_s
            )
        from recsmith.streaming.nats_jetstream import JetStreamBroker

        return JetStreamBroker(self.url, self.name, self.group, claim_idle_s=claim_idle_s)

    def cli_args(self) -> list[str]:
        if self.kind == "redis":
            return ["--redis-stream", self.url, "--stream", self.name, "--group", self.group]
        return ["--nats", self.url, "--stream", self.name, "--durable", self.group]

    def source(self, message_id: str) -> str:
        """The dead-letter source of that message, written out by hand (the oracle)."""
        return f"stream:{self.kind}/{self.name}/{message_id}"

    def delete(self) -> None:
        if self.kind == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            client.delete(self.name)
            client.close()
        else:
            asyncio.run(self._nats(lambda js: js.delete_stream(self.name)))

    async def _nats(self, work: Any) -> Any:
        import nats

        nc = await nats.connect(self.url)
        try:
            return await work(nc.jetstream())
        finally:
            await nc.close()


@pytest.fixture(params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in BROKERS])
def stream(request: pytest.FixtureRequest) -> Iterator[TestStream]:
    """A fresh stream on each broker in turn (deleted afterwards)."""
    url = redis_url_or_skip() if request.param == "redis" else nats_url_or_skip()
    made = TestStream(request.param, url)
    try:
        yield made
    finally:
        made.delete()
