"""Redis Streams with a consumer group: ``XREADGROUP``, ``XACK``, and ``XAUTOCLAIM`` of messages
another consumer was given and left unacknowledged past ``claim_idle_s`` (it died, or hangs).

A message is a stream entry with one field naming its kind, the record as JSON its value:
``XADD clicks * event '{"user_id": "u1", "item_id": "i9", "event_type": "view", ...}'`` or
``XADD clicks * item '{"item_id": "i9", "categories": ["shoes"]}'``.

The group is created at the start of the stream (``0``) when it does not exist, so events written
before the first consumer started are consumed too. A consumer first re-reads its own pending
entries (``XREADGROUP … 0``: a restart under the same ``--consumer`` name, or a batch the store
refused), then claims stale ones of others (at most every half ``claim_idle_s``), then reads new
ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import redis

from recsmith.streaming.broker import Lag, StreamMessage

#: An entry that is not one ``event``/``item`` field is refused as kind ``<fields …>``, its fields
#: as a JSON object for the dead letter to show what came.
_ODD = "<fields {}>"


class RedisStreamBroker:
    """One consumer of a Redis Streams consumer group (module docstring)."""

    errors: tuple[type[Exception], ...] = (redis.RedisError,)

    def __init__(
        self, url: str, stream: str, group: str, consumer: str, *, claim_idle_s: float = 30.0
    ) -> None:
        self.label = f"redis/{stream}"
        self._client = redis.Redis.from_url(url)
        self._stream, self._group, self._consumer = stream, group, consumer
        self._claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self._claim_every_s = claim_idle_s / 2
        self._claim_due = 0.0
        self._claim_cursor = "0-0"
        self._own_first = True  # this consumer's own pending entries come first
        try:
            self._client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # the group exists already: join it
                raise

    def fetch(self, max_messages: int, wait_s: float) -> list[StreamMessage]:
        if self._own_first:
            own = self._read("0", max_messages, None, redelivered=True)
            if own:
                return own
            self._own_first = False
        claimed = self._claim(max_messages)
        room = max_messages - len(claimed)
        if room <= 0:
            return claimed
        block = None if claimed else max(1, int(wait_s * 1000))
        return claimed + self._read(">", room, block, redelivered=False)

    def ack(self, messages: Sequence[StreamMessage]) -> None:
        if messages:
            self._client.xack(self._stream, self._group, *(m.id for m in messages))

    def release(self, messages: Sequence[StreamMessage]) -> None:
        """They stay pending with this consumer: read again first (``XREADGROUP … 0``), or
        claimed by another consumer once idle past the timeout."""
        self._own_first = True

    def lag(self) -> Lag:
        for info in self._client.xinfo_groups(self._stream):
            name = info["name"]
            if (name.decode() if isinstance(name, bytes) else name) == self._group:
                lag = info.get("lag")  # None when Redis cannot tell (entries deleted)
                return Lag(int(info["pending"]), None if lag is None else int(lag))
        raise redis.ResponseError(f"no consumer group {self._group!r} on {self._stream!r}")

    def close(self) -> None:
        self._client.close()

    def _read(
        self, start: str, count: int, block: int | None, *, redelivered: bool
    ) -> list[StreamMessage]:
        reply = self._client.xreadgroup(
            self._group, self._consumer, {self._stream: start}, count=count, block=block
        )
        entries = _entries_of(reply)
        # an entry has one field at least; none (or None) means pending but trimmed from the
        # stream since: nothing is left to store, and it would stay pending forever
        gone = [i for i, fields in entries if not fields]
        if gone:
            self._client.xack(self._stream, self._group, *gone)
        return [_message(i, fields, redelivered) for i, fields in entries if fields]

    def _claim(self, count: int) -> list[StreamMessage]:
        """Entries idle past the claim timeout, taken over from whichever consumer held them."""
        now = time.monotonic()
        if now < self._claim_due:
            return []
        next_id, entries, *_ = self._client.xautoclaim(
            self._stream,
            self._group,
            self._consumer,
            self._claim_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        cursor = next_id.decode() if isinstance(next_id, bytes) else str(next_id)
        self._claim_cursor = cursor
        if cursor == "0-0":  # went through the whole pending list: wait before the next pass
            self._claim_due = now + self._claim_every_s
        return [_message(i, fields, True) for i, fields in entries if fields]


def _entries_of(reply: Any) -> list[tuple[Any, Any]]:
    """The entries of an ``XREADGROUP`` reply on one stream."""
    return [entry for _, entries in reply or () for entry in entries]


def _message(entry_id: Any, fields: dict[Any, Any], redelivered: bool) -> StreamMessage:
    text_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    names = [k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in fields]
    if len(fields) == 1:
        (value,) = fields.values()
        body = value if isinstance(value, bytes) else str(value).encode()
        return StreamMessage(text_id, names[0], body, redelivered)
    values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in fields.values()]
    body = json.dumps(dict(zip(names, values, strict=True))).encode()
    return StreamMessage(text_id, _ODD.format(", ".join(names)), body, redelivered)
