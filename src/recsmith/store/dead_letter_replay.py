"""Replay dead letters: validate refused event records again under the current settings (after a
fix: a new event type in ``[events] weights``, a wider value range) and store those that pass.

Idempotent: a passing record is stored first and its dead letter removed afterwards, so a replay
cut short between the two stores nothing twice when run again (``append`` skips an ``event_id``
already stored; an event without one has an id made from its content). A record that still fails
keeps its dead letter, untouched; one whose ``event_id`` now names a different stored event is
dead-lettered again with that reason (and its old letter removed). A payload that was too large
to keep whole (``dead_letters.kept_payload``) cannot be replayed and stays.

Only event records are replayed: a catalogue record refused by ``/v1/items`` does not pass as an
event and stays (send it again with ``PUT /v1/items/{id}``). A live event (source ``http:…``, or
a stream's ``stream:…``) that came without a timestamp but with an ``event_id`` gets the time it
was received, as it would have then (``validate.STAMP_RULE``), and a number it sent as a string
(``"value": "5"``) is refused again as it was live, while an import's letter reads its text as the
import does. Replayed events are not attributed to served lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from recsmith.config import EventSettings
from recsmith.store.base import DeadLetter, EventStore
from recsmith.store.dead_letters import is_truncated
from recsmith.store.ingest import check_events, store_events

#: Dead letters read per round trip.
PAGE = 1000
#: Sources of live events (``POST /v1/events``, a stream: ``recsmith.streaming``), whose records
#: may lack a timestamp.
LIVE_PREFIX = ("http:", "stream:")


@dataclass
class ReplayResult:
    """What a replay did, by outcome; ``still_refused`` counts the current reasons."""

    examined: int = 0
    stored: int = 0
    duplicates: int = 0
    refused_again: int = 0
    not_kept_whole: int = 0
    still_refused: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "examined": self.examined,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "refused_again": self.refused_again,
            "not_kept_whole": self.not_kept_whole,
            "still_refused": sum(self.still_refused.values()),
            "still_refused_by_reason": dict(self.still_refused.most_common()),
        }


def replay_dead_letters(
    store: EventStore,
    settings: EventSettings,
    *,
    since: datetime | None = None,
    reason: str | None = None,
) -> ReplayResult:
    """Replay the dead letters received at or after ``since`` whose errors contain ``reason``
    (all when None), oldest first (module docstring)."""
    result = ReplayResult()
    # letters written from now on (a reused event_id refused again, the server's own) are not
    # this replay's: replaying its own output would never end
    started = datetime.now(UTC)
    after = 0
    while page := store.dead_letters(PAGE, since=since, reason=reason, after_id=after):
        after = page[-1].letter_id
        letters = [d for d in page if d.received_at < started]
        result.examined += len(letters)
        whole = [d for d in letters if not is_truncated(d.payload)]
        result.not_kept_whole += len(letters) - len(whole)
        for source in dict.fromkeys(d.source for d in whole):
            _replay_source(store, settings, [d for d in whole if d.source == source], result)
    return result


def replay_target(since: str | None, reason: str | None) -> str:
    """What the audit record of a replay names as its target: its filters as given, or ``all``
    (the CLI and ``POST /v1/admin/dead-letters/replay`` alike)."""
    return " ".join(f"{k}={v}" for k, v in (("since", since), ("reason", reason)) if v) or "all"


def _replay_source(
    store: EventStore, settings: EventSettings, letters: Sequence[DeadLetter], result: ReplayResult
) -> None:
    """Replay one source's letters of a page: stored under the same source, so a record refused
    again is dead-lettered as coming from where it first came from."""
    source = letters[0].source
    records = [_as_received(d) for d in letters]
    checked = check_events(records, settings, typed_numbers=source.startswith(LIVE_PREFIX))
    for rejection in checked.rejected:
        result.still_refused.update(f"{e.field}: {e.reason}" for e in rejection.errors)
    # identify events that pass the door are handed over too (``privacy.identify``): a link
    # the rule refuses again is dead-lettered again, like a reused event_id
    handed = [*checked.positions.tolist(), *(x.position for x in checked.identify)]
    if not handed:
        return
    stored = store_events(store, replace(checked, rejected=[]), source=source)
    result.stored += stored.accepted
    result.duplicates += stored.duplicates
    result.refused_again += len(stored.rejected)
    store.delete_dead_letters([letters[p].letter_id for p in handed])


def _as_received(letter: DeadLetter) -> Any:
    """The record to validate: the payload, with the time received for a live event that had
    an event_id and no timestamp (what the server would have stamped it with)."""
    payload = letter.payload
    if (
        letter.source.startswith(LIVE_PREFIX)
        and isinstance(payload, dict)
        and payload.get("event_id") is not None
        and payload.get("timestamp") is None
    ):
        return {**payload, "timestamp": letter.received_at.timestamp()}
    return payload
