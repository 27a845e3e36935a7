"""Scratch streams on the real brokers, for the streaming tests and ``benchmarks/stream_ingest.py``.

Each has a unique name, so parallel runs never share one; ``delete`` removes it (and its group).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

from recsmith.streaming.broker import Broker


class ScratchStream:
    """A stream of a unique name on one broker and its consumer group (Redis group, JetStream
    durable): publish to it, build its adapter, name it on the command line, delete it after."""

    def __init__(self, kind: str, url: str, prefix: str = "t") -> None:
        self.kind = kind
        self.url = url
        self.name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.group = "g"
        self.label = f"{kind}/{self.name}"
        if kind == "nats":
            asyncio.run(self._nats(lambda js: js.add_stream(name=self.name, subjects=[self.name])))

    def publish(self, messages: Sequence[tuple[str, bytes]]) -> list[str]:
        """(kind, body) each as one message; their ids in the stream, in order."""
        if self.kind == "redis":
            import redis

            client = redis.Redis.from_url(self.url)
            ids: list[str] = []
            for start in range(0, len(messages), 10_000):  # one round trip per 10,000
                pipe = client.pipeline(transaction=False)
                for kind, body in messages[start : start + 10_000]:
                    pipe.xadd(self.name, {kind: body})
                ids += [i.decode() for i in pipe.execute()]
            client.close()
            return ids

        async def send(js: Any) -> list[str]:
            ids: list[str] = []
            for start in range(0, len(messages), 1000):  # 1,000 in flight at a time
                acks = await asyncio.gather(
                    *(
                        js.publish(self.name, body, headers={"Recsmith-Kind": kind})
                        for kind, body in messages[start : start + 1000]
                    )
                )
                ids += [str(ack.seq) for ack in acks]
            return ids

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
