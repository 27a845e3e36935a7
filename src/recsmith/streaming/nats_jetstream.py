"""NATS JetStream with a durable pull consumer shared by every ``recsmith consume`` of a group.

A message's data is the record as JSON; its ``Recsmith-Kind`` header says ``event`` (the default
when absent) or ``item``: ``nats pub clicks.view '{"user_id": "u1", …}'`` or ``nats pub
--header Recsmith-Kind:item clicks.items '{"item_id": "i9", …}'``. The stream must exist (its
subjects, retention and storage are the operator's choice); the durable consumer is created on it
when absent, with explicit acknowledgement and ``ack_wait`` the claim timeout, so a message its
consumer did not acknowledge in time (it died) is delivered to another consumer of the durable.

nats-py is asyncio; the consumer loop is not. The adapter owns an event loop and runs each call
to completion on it, so the store work between calls stays plain blocking code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import nats
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from recsmith.errors import ValidationError
from recsmith.streaming.broker import Lag, StreamMessage

#: The header naming what a message carries (``broker.KINDS``); absent means an event.
KIND_HEADER = "Recsmith-Kind"
#: Delay before a released message (the store refused its batch) is delivered again.
RELEASE_DELAY_S = 1.0
#: What an acknowledgement and a release send on a message's reply subject.
_ACK = b"+ACK"
_NAK = b'-NAK {"delay": %d}' % round(RELEASE_DELAY_S * 1e9)
#: How long ``ack``/``release`` wait for the server to confirm it applied them; past it the
#: call fails as a broker error. Nothing sends it again: the consumer loop logs the failure and
#: fetches the next batch, and JetStream redelivers the unconfirmed messages after ``ack_wait``.
SETTLE_TIMEOUT_S = 10.0

#: Attempts to reach the server (at start, and after it went away) before the consumer stops.
RECONNECTS = 5

T = TypeVar("T")
log = logging.getLogger(__name__)


async def _log_error(exc: Exception) -> None:
    """One line per connection error (nats-py's default logs a traceback for each)."""
    log.warning("NATS: %s", exc)


class JetStreamBroker:
    """One consumer of a JetStream durable pull consumer (module docstring)."""

    errors: tuple[type[Exception], ...] = (NatsError, OSError)

    def __init__(self, url: str, stream: str, durable: str, *, claim_idle_s: float = 30.0) -> None:
        self.label = f"nats/{stream}"
        self._stream, self._durable = stream, durable
        self._loop = asyncio.new_event_loop()
        self._nc: Any = self._run(
            nats.connect(
                url,
                connect_timeout=5,
                reconnect_time_wait=1,
                max_reconnect_attempts=RECONNECTS,
                error_cb=_log_error,
            )
        )
        self._js = self._nc.jetstream()
        try:
            self._sub = self._run(self._bind(claim_idle_s))
        except BaseException:
            self.close()
            raise
        self._in_flight: dict[str, Any] = {}  # message id -> nats Msg, until acked or released

    async def _bind(self, claim_idle_s: float) -> Any:
        try:
            await self._js.stream_info(self._stream)
        except NotFoundError:
            raise ValidationError(
                "--stream", f"no JetStream stream {self._stream!r} (create it: nats stream add)"
            ) from None
        try:
            await self._js.consumer_info(self._stream, self._durable)
        except NotFoundError:
            config = ConsumerConfig(
                durable_name=self._durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=claim_idle_s,
            )
            await self._js.add_consumer(self._stream, config)
        return await self._js.pull_subscribe_bind(durable=self._durable, stream=self._stream)

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(work)

    def fetch(self, max_messages: int, wait_s: float) -> list[StreamMessage]:
        try:
            got = self._run(self._sub.fetch(max_messages, timeout=max(wait_s, 0.01)))
        except TimeoutError:  # nothing came in time: an empty fetch, not a broker failure
            # nats' FetchTimeoutError is one; nats-py 2.16 also raises a bare asyncio (= builtin)
            # TimeoutError when its deadline runs out between its probe and its waiting request.
            return []
        messages = []
        for msg in got:
            meta = msg.metadata
            key = str(meta.sequence.stream)
            self._in_flight[key] = msg
            kind = (msg.headers or {}).get(KIND_HEADER, "event")
            messages.append(StreamMessage(key, kind, msg.data, meta.num_delivered > 1))
        return messages

    def ack(self, messages: Sequence[StreamMessage]) -> None:
        """Acknowledged and applied: on return the consumer's state (its ``lag``) counts them.

        When the confirmation fails (``SETTLE_TIMEOUT_S``, the connection lost, or
        ``NoRespondersError`` at once when the durable was deleted) it raises a broker error and
        the batch is not retried: it is already stored, ``StreamConsumer.step`` skips its totals
        and metrics, and JetStream redelivers the messages whose ack did not apply after
        ``ack_wait`` (``claim_idle_s``), where the store's idempotency keeps one copy of each
        (counted as duplicates then).
        """
        self._run(self._settle(messages, _ACK))

    def release(self, messages: Sequence[StreamMessage]) -> None:
        """Negatively acknowledged, delivered again after ``RELEASE_DELAY_S`` (not at once: the
        store just refused them). They stay in ``lag().pending`` until then; JetStream counts a
        delayed redelivery as pending acknowledgement. Failure: as ``ack`` (redelivered after
        ``ack_wait`` instead)."""
        self._run(self._settle(messages, _NAK))

    async def _settle(self, messages: Sequence[StreamMessage], payload: bytes) -> None:
        """Sends ``payload`` for each message, the last one as a request.

        The server queues a consumer's acknowledgements and applies them in a goroutine of its
        own, in the order they came, answering one sent as a request once applied. A flush (one
        round trip) only said they had reached the server: a ``lag`` read straight after could
        still count them pending (the flaky redelivery test). The answer to the last one says
        all were applied, for the same one round trip (a request each would cost ten times the
        client CPU on a batch of 500).
        """
        msgs = [self._in_flight.pop(m.id) for m in messages]
        if not msgs:
            return
        for msg in msgs[:-1]:
            await self._nc.publish(msg.reply, payload)
        await self._nc.request(msgs[-1].reply, payload, timeout=SETTLE_TIMEOUT_S)

    def lag(self) -> Lag:
        info = self._run(self._js.consumer_info(self._stream, self._durable))
        return Lag(int(info.num_ack_pending or 0), int(info.num_pending or 0))

    def close(self) -> None:
        if not self._nc.is_closed:
            self._run(self._nc.close())
        self._loop.close()
