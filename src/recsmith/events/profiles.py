"""Storing user profiles (``PUT/PATCH /v1/users/{id}``, ``recsmith import --format users``).

A profile is a user's properties (age, gender, occupation, plan…): the ranker's profile features
and segment popularity read them at training (``ranking.property_features``). They are personal
data like events: a person who was erased or withdrew tracking consent gets no profile stored
(``privacy.screen``), erasure deletes it and export includes it (``privacy``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from recsmith.events.schema import FieldError, IngestResult, Rejection
from recsmith.events.validate import validate_users
from recsmith.privacy.screen import refused
from recsmith.privacy.view import view_of
from recsmith.store.base import EventStore


def store_profiles(
    store: EventStore, records: Sequence[Mapping[str, Any]], *, source: str, offset: int = 0
) -> IngestResult:
    """Validate and upsert profile records (a re-sent profile replaces the stored one); invalid
    ones, and those of people erased or untracked, are rejected with their reasons (the latter
    without their payload, as refused events are) and kept as dead letters."""
    users, rejected = validate_users(records, offset=offset)
    if users:
        bad = {r.index for r in rejected}
        places = [offset + n for n in range(len(records)) if offset + n not in bad]
        ids = pd.Series([u.user_id for u in users], dtype=object)
        mask, reasons = refused(view_of(store).fresh(), ids)
        rejected += [
            Rejection(place, (FieldError("user_id", str(why)),), {})
            for place, out, why in zip(places, mask.tolist(), reasons, strict=True)
            if out
        ]
        users = [u for u, out in zip(users, mask.tolist(), strict=True) if not out]
    if users:
        store.upsert_users(users)
    store.add_dead_letters(rejected, source)
    return IngestResult(len(users), 0, tuple(sorted(rejected, key=lambda r: r.index)))
