"""Text UTF-8 cannot encode (lone surrogates, which ``json.loads`` makes of ``"\\ud800"``): each
record holding some is refused with the field named, its neighbours are kept, and its dead letter
can itself be stored and read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from recsmith.config import EventSettings
from recsmith.events.validate import validate_events, validate_items, validate_users

SETTINGS = EventSettings()
NOW = 1_704_067_200.0
LONE = "a\ud800"  # json.loads('"a\\ud800"') gives exactly this
REASON = "not valid Unicode (lone surrogate)"
UNKNOWN_FIELD = (
    "unknown field (valid: context, event_id, event_type, item_id, position, recommendation_id, "
    "session_id, timestamp, user_id, value)"
)
GOOD: dict[str, Any] = dict(
    user_id="u1", item_id="i1", event_type="view", timestamp="2023-06-01T12:00:00Z"
)


def utf8_clean(value: Any) -> bool:
    """The oracle: can this JSON value be written as UTF-8 (what every store and response needs)?"""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_the_oracle_sees_the_surrogate() -> None:
    assert json.loads('"a\\ud800"') == LONE
    assert not utf8_clean({"k": LONE}) and not utf8_clean({LONE: 1}) and utf8_clean({"k": "é"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"user_id": LONE}, "user_id"),
        ({"event_id": LONE}, "event_id"),
        ({"session_id": LONE}, "session_id"),
        ({"item_id": LONE}, "item_id"),
        ({"event_type": LONE}, "event_type"),
        ({"value": LONE}, "value"),
        ({"timestamp": "2023-06-01\ud800"}, "timestamp"),
        ({"context": {LONE: 1}}, "context"),
        ({"context": {"k": LONE}}, "context"),
        ({"context": '{"k": "a\\ud800"}'}, "context"),  # context as JSON text, as CSV holds it
        ({"colour\udc00": "red"}, "colour\\udc00"),  # an unknown key, named readably
    ],
)
def test_an_event_field_utf8_cannot_encode_is_named_and_neighbours_are_kept(
    changes: dict[str, Any], field: str
) -> None:
    batch = [{**GOOD, "item_id": "before"}, {**GOOD, **changes}, {**GOOD, "item_id": "after"}]
    valid, rejected = validate_events(batch, SETTINGS, now=NOW)
    assert valid["item_id"].tolist() == ["before", "after"]
    assert [r.index for r in rejected] == [1]
    reason = UNKNOWN_FIELD if field.startswith("colour") else REASON
    assert [(e.field, e.reason) for e in rejected[0].errors] == [(field, reason)]
    # what the dead letter keeps and what the response says can be written as UTF-8
    assert utf8_clean(rejected[0].payload)
    assert utf8_clean([(e.field, e.reason) for e in rejected[0].errors])
    assert utf8_clean(valid.to_dict("records"))


def test_the_dead_letter_payload_escapes_the_character_readably() -> None:
    _, rejected = validate_events([{**GOOD, "user_id": LONE, "x\udc00y": [LONE]}], SETTINGS)
    assert rejected[0].payload == {**GOOD, "user_id": "a\\ud800", "x\\udc00y": ["a\\ud800"]}


def test_a_whole_column_of_them_among_a_thousand_events() -> None:
    batch = [{**GOOD, "item_id": f"i{n}" + ("\udfff" if n % 100 == 7 else "")} for n in range(1000)]
    valid, rejected = validate_events(batch, SETTINGS, now=NOW)
    assert [r.index for r in rejected] == list(range(7, 1000, 100))
    assert len(valid) == 990 and utf8_clean(valid["item_id"].tolist())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"item_id": LONE}, "item_id"),
        ({"categories": ["shoes", LONE]}, "categories"),
        ({"tags": [LONE]}, "tags"),
        ({"text": f"about {LONE}"}, "text"),
        ({"properties": {LONE: 1}}, "properties"),
        ({"properties": {"brand": LONE}}, "properties"),
        ({"colour\udc00": "red"}, "colour\\udc00"),
    ],
)
def test_an_item_field_utf8_cannot_encode_is_named_and_neighbours_are_kept(
    changes: dict[str, Any], field: str
) -> None:
    records = [{"item_id": "before"}, {"item_id": "x", **changes}, {"item_id": "after"}]
    items, rejected = validate_items(records)
    assert [i.item_id for i in items] == ["before", "after"]
    assert [(r.index, [e.field for e in r.errors]) for r in rejected] == [(1, [field])]
    assert utf8_clean(rejected[0].payload)
    if field != "colour\\udc00":
        assert REASON in rejected[0].errors[0].reason


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"user_id": LONE}, "user_id"),
        ({"user_id": "u", "properties": {"plan": LONE}}, "properties"),
        ({"user_id": "u", "properties": {LONE: "free"}}, "properties"),
    ],
)
def test_a_user_field_utf8_cannot_encode_is_named(record: dict[str, Any], field: str) -> None:
    users, rejected = validate_users([record, {"user_id": "ok"}])
    assert [u.user_id for u in users] == ["ok"]
    assert [e.field for e in rejected[0].errors] == [field]
    assert REASON in rejected[0].errors[0].reason and utf8_clean(rejected[0].payload)
