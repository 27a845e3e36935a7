"""Whether a stored dead letter names a person: erasure deletes the refused records that do.

A dead letter keeps the refused record's JSON (ASCII-escaped), or for a large one a marker whose
``head`` is the start of that JSON as a string, so the id can appear as a value, or inside a head
as a JSON string literal. Reasons may quote the offending value too. The stores find candidates
with a substring search on ``search_texts`` and let ``names_person`` decide, so an id that is a
substring of other ids ("u1" in "u10") never costs someone else's dead letter.
"""

from __future__ import annotations

import json
from typing import Any


def search_texts(user_id: str) -> tuple[str, str]:
    """The id as it appears inside stored JSON text (escaped, no quotes), and as it appears in a
    truncated marker's head (escaped twice: the head is JSON text stored as a JSON string). Every
    dead letter naming the person holds one of them."""
    once = json.dumps(user_id)[1:-1]
    return once, json.dumps(once)[1:-1]


def names_person(user_id: str, errors_text: str, payload_text: str) -> bool:
    """True when the dead letter's payload holds ``user_id`` as a value (or as a JSON string in a
    truncated head), or one of its reasons quotes it."""
    literal = json.dumps(user_id)
    if _holds(json.loads(payload_text), user_id, literal):
        return True
    reasons = [str(e.get("reason", "")) for e in json.loads(errors_text) if isinstance(e, dict)]
    return any(literal in r or repr(user_id) in r for r in reasons)


def _holds(value: Any, user_id: str, literal: str) -> bool:
    if isinstance(value, str):
        return value == user_id or literal in value
    if isinstance(value, dict):
        return any(_holds(v, user_id, literal) for v in value.values())
    if isinstance(value, list):
        return any(_holds(v, user_id, literal) for v in value)
    return False
