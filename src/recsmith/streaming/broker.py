"""What the consumer needs of a broker: a message as delivered, and the four calls it makes.

Everything broker-specific (consumer groups, claiming a dead consumer's messages, how an
acknowledgement is sent) stays in the adapter, so another broker (Kafka, say) is one more module
implementing ``Broker``, with the consumer, its metrics and its tests unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

#: What a message carries: an event (as ``POST /v1/events`` takes one) or a catalogue item (as
#: ``PUT /v1/items/{id}`` does).
KINDS = ("event", "item")
Kind = Literal["event", "item"]


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One message as the broker delivered it."""

    #: the broker's id of the message in its stream (Redis ``1700000000000-0``, a JetStream
    #: stream sequence): what a dead letter names, and what an acknowledgement refers to
    id: str
    #: what the message says it carries (the Redis field name, the JetStream ``Recsmith-Kind``
    #: header); checked against ``KINDS`` by the consumer, so a typo is a dead letter, not a loss
    kind: str
    body: bytes
    #: delivered before without an acknowledgement (its consumer died, or the store failed):
    #: it may already be stored, or dead-lettered
    redelivered: bool = False


@dataclass(frozen=True, slots=True)
class Lag:
    """How far the consumers of a stream are behind, as the broker counts it."""

    #: delivered to a consumer, not acknowledged yet (in flight, or held by a dead consumer)
    pending: int
    #: in the stream, not delivered to any consumer of the group yet (None: the broker cannot say)
    unconsumed: int | None

    @property
    def drained(self) -> bool:
        """Nothing left to deliver nor to acknowledge."""
        return self.pending == 0 and not self.unconsumed


class Broker(Protocol):
    """A stream with a group of consumers sharing it; one instance per consumer."""

    #: names the stream in dead letters' sources (``stream:<label>/<message id>``)
    label: str
    #: what the broker's client raises when the broker is unreachable or refuses a call: the
    #: command stops with a message naming it (nothing is lost: unacknowledged is redelivered)
    errors: tuple[type[Exception], ...]

    def fetch(self, max_messages: int, wait_s: float) -> list[StreamMessage]:
        """Up to ``max_messages``, waiting up to ``wait_s`` when none is there; includes messages
        that another consumer of the group was given and did not acknowledge in time."""
        ...

    def ack(self, messages: Sequence[StreamMessage]) -> None:
        """Acknowledge: the broker forgets them. Called only once the store has them."""
        ...

    def release(self, messages: Sequence[StreamMessage]) -> None:
        """The store could not take them: deliver them again (to this consumer or another)."""
        ...

    def lag(self) -> Lag: ...

    def close(self) -> None: ...
