"""A batch of stream messages into the store, with the HTTP routes' validation and semantics.

Each message holds one record, parsed as ``POST /v1/events`` parses each element of its array
(``serving.batch``: strict JSON, a repeated key refused) and then validated and stored by the very
functions the routes use: events by ``ingest_event_batches`` (live events: one with an
``event_id`` may omit its timestamp), catalogue items by ``ingest_items``, items first so that
events of a new item find it. A refused record is dead-lettered under its message's own source,
``stream:<broker label>/<message id>``, so the sender can find the message.

Redelivery is a no-op: an event stored before is a duplicate (``event_id``; an event sent without
one has an id made from its content), an item is upserted to the same value, and a redelivered
message whose record was dead-lettered already is skipped (``EventStore.dead_letter_sources``),
because a message is one record and its dead letter is written only after its refusal was final.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recsmith.config import EventSettings
from recsmith.events.schema import FieldError, Rejection
from recsmith.serving.batch import parse_record, record_rejection
from recsmith.store.base import EventStore
from recsmith.store.ingest import OnStored, ingest_event_batches, ingest_items
from recsmith.streaming.broker import KINDS, StreamMessage
from recsmith.surrogates import storable

if TYPE_CHECKING:
    from recsmith.decisions.attribution import Attributor
    from recsmith.serving.online_state import OnlineState

#: Dead letters of a stream name it and the message: ``stream:redis/clicks/1700000000000-0``.
SOURCE_PREFIX = "stream:"


def message_source(label: str, message_id: str) -> str:
    """The dead-letter source of one message of the stream ``label``."""
    return f"{SOURCE_PREFIX}{label}/{message_id}"


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of a batch's messages; every message is counted once."""

    events_stored: int = 0
    events_duplicate: int = 0
    items_stored: int = 0
    rejected: int = 0
    #: redelivered messages whose record was dead-lettered before (nothing done again)
    already_rejected: int = 0

    @property
    def messages(self) -> int:
        return (
            self.events_stored
            + self.events_duplicate
            + self.items_stored
            + self.rejected
            + self.already_rejected
        )


def ingest_messages(
    store: EventStore,
    messages: Sequence[StreamMessage],
    settings: EventSettings,
    *,
    label: str,
    on_stored: OnStored | None = None,
    attributor: Attributor | None = None,
    state: OnlineState | None = None,
) -> BatchOutcome:
    """Store one batch (module docstring); returns once the store has every record of it, so
    the caller may acknowledge all of them. ``on_stored``, ``attributor`` and ``state`` are
    ``ingest_event_batches``'s (online state, attribution to served lists)."""
    sources = [message_source(label, m.id) for m in messages]
    redelivered = [s for s, m in zip(sources, messages, strict=True) if m.redelivered]
    done = store.dead_letter_sources(redelivered) if redelivered else set()

    events: list[tuple[dict[str, Any], str]] = []
    items: list[tuple[dict[str, Any], str]] = []
    refused: list[tuple[Rejection, str]] = []
    for message, source in zip(messages, sources, strict=True):
        if source in done:
            continue
        record = _record(message)
        if isinstance(record, Rejection):
            refused.append((record, source))
        else:
            (events if message.kind == "event" else items).append((record, source))

    for rejection, source in refused:  # rare: one insert each, under the message's own source
        store.add_dead_letters([rejection], source)
    items_stored = rejected = 0
    if items:
        result = ingest_items(store, [r for r, _ in items], source=[s for _, s in items])
        items_stored, rejected = result.accepted, len(result.rejected)
    stored = duplicate = 0
    if events:
        results = ingest_event_batches(
            store,
            [[r] for r, _ in events],
            settings,
            source=[s for _, s in events],
            on_stored=on_stored,
            attributor=attributor,
            state=state,
        )
        for result in results:
            stored += result.accepted
            duplicate += result.duplicates
            rejected += len(result.rejected)
    return BatchOutcome(stored, duplicate, items_stored, rejected + len(refused), len(done))


def _record(message: StreamMessage) -> dict[str, Any] | Rejection:
    """The message's record, or its rejection (as record 0 of its message) when the message is
    not one JSON object of a known kind."""
    if message.kind not in KINDS:
        reason = f"unknown kind {message.kind!r}: a message carries one {' or '.join(KINDS)}"
        text = message.body.decode("utf-8", "replace")
        return Rejection(0, (FieldError("kind", reason),), storable({"body": text}))
    try:
        record = parse_record(message.body)
    except ValueError as exc:
        text = message.body.decode("utf-8", "replace")
        reason = f"not valid JSON: {exc}"
        return Rejection(0, (FieldError("record", reason),), storable({"body": text}))
    if not isinstance(record, dict):
        return record_rejection(0, record)
    return record
