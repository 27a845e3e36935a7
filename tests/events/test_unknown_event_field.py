"""An event's unknown key is said as an item's or a user's is (``validation_reasons``): with the
field meant when one is close (``timestap`` → ``timestamp``), else the fields an event has. Both
validators (the column checks of imports and the per-record one of small HTTP batches) word it
alike. The oracle: an event's documented fields, written out here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events
from recsmith.events.validate_small import validate_small

SETTINGS = EventSettings()
NOW = 1_704_067_200.0  # 2024-01-01T00:00:00Z
GOOD: dict[str, Any] = {"user_id": "u1", "item_id": "i1", "event_type": "view"}
EVENT_FIELDS = (
    "context, event_id, event_type, item_id, position, recommendation_id, session_id, timestamp, "
    "user_id, value"
)


def _columns(records: list[dict[str, Any]]) -> Any:
    return validate_events(records, SETTINGS, now=NOW)[1]


def _per_record(records: list[dict[str, Any]]) -> Any:
    return validate_small(records, SETTINGS, now=NOW, stamp_missing=False)[1]


@pytest.mark.parametrize("rejections_of", [_columns, _per_record], ids=["columns", "small"])
@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("timestap", "unknown field (did you mean timestamp?)"),
        ("userid", "unknown field (did you mean user_id?)"),
        ("colour", f"unknown field (valid: {EVENT_FIELDS})"),
    ],
)
def test_an_unknown_key_names_the_field_meant(
    rejections_of: Callable[[list[dict[str, Any]]], Any], key: str, reason: str
) -> None:
    record = {**GOOD, "timestamp": "2023-06-01T12:00:00Z", key: 1}
    rejected = rejections_of([record])
    assert [r.index for r in rejected] == [0]
    assert [(e.field, e.reason) for e in rejected[0].errors] == [(key, reason)]
