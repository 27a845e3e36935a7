"""What a dead letter keeps of a refused record, and for how long.

Dead letters exist so that someone can see why records were refused and fix the sender; a whole
200 MB payload serves nobody and once filled the table (252 MB in four rows). So a payload whose
JSON is longer than ``max_payload_bytes`` is kept as a marker with its size and the start of its
JSON text, and dead letters older than ``retention_s`` are deleted, at most once every
``prune_every_s`` per store (a delete on an indexed time column, not a cost per write).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from recsmith.events.schema import Rejection

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class DeadLetterPolicy:
    """How much of a payload a dead letter keeps, and how long dead letters are kept."""

    max_payload_bytes: int = 4096
    retention_s: float = 30 * DAY_S
    prune_every_s: float = 60.0


def kept_payload(payload: Any, max_bytes: int) -> str:
    """The payload's JSON text, or, past ``max_bytes``, a marker object
    ``{"truncated": true, "original_bytes": N, "head": "<the first max_bytes of the JSON>"}``.

    The JSON is ASCII (non-ASCII characters escaped), so characters are bytes and the head never
    splits a character."""
    text = json.dumps(payload, default=str)
    if len(text) <= max_bytes:
        return text
    return json.dumps({"truncated": True, "original_bytes": len(text), "head": text[:max_bytes]})


def is_truncated(payload: Any) -> bool:
    """Whether a stored payload is ``kept_payload``'s marker rather than the record itself."""
    return (
        isinstance(payload, dict)
        and payload.get("truncated") is True
        and set(payload) == {"truncated", "original_bytes", "head"}
    )


def dead_letter_rows(
    rejections: Sequence[Rejection], source: str, now_us: int, max_payload_bytes: int
) -> list[tuple[Any, ...]]:
    """Rows for ``dead_letters`` (received_at, source, record_index, errors, payload)."""
    return [
        (
            now_us,
            source,
            r.index,
            json.dumps([{"field": e.field, "reason": e.reason} for e in r.errors]),
            kept_payload(r.payload, max_payload_bytes),
        )
        for r in rejections
    ]


@dataclass
class PruneClock:
    """Says when a store's next prune of old dead letters is due (at most one per interval,
    whichever thread asks first)."""

    every_s: float
    _next: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self.every_s
            return True
