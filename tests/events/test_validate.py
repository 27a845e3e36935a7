"""Event validation: each bad record gets its own precise errors and never takes good ones along."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsmith.config import EventSettings
from recsmith.events.schema import EVENT_COLUMNS, EVENT_INPUT_FIELDS
from recsmith.events.validate import validate_events, validate_items, validate_users
from recsmith.events.validate_small import validate_small

SETTINGS = EventSettings()
NOW = 1_704_067_200.0  # 2024-01-01T00:00:00Z: fixed, so "in the future" never depends on the clock
DAY = 86_400
GOOD: dict[str, Any] = dict(
    user_id="u1", item_id="i1", event_type="view", timestamp="2023-06-01T12:00:00Z"
)
GOOD_TS = 1_685_620_800_000_000
UNKNOWN_TYPE = "unknown event type (known: add_to_cart, click, dwell, play, purchase, rating, view)"
NOT_A_TIME = "not a date-time (ISO 8601) or Unix time"
FINER = (
    "more than 1 day(s) in the future as Unix milliseconds (a number above 1e11): in %s? "
    "give seconds or milliseconds"
)
NOT_STRING = "must be a string (quote numeric ids)"
UNKNOWN_FIELD = (
    "unknown field (valid: context, event_id, event_type, item_id, position, recommendation_id, "
    "session_id, timestamp, user_id, value)"
)


def check(records: list[dict[str, Any]], offset: int = 0) -> tuple[pd.DataFrame, list[Any]]:
    return validate_events(records, SETTINGS, now=NOW, offset=offset)


def errors_of(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, reason) pairs of a lone record, which must have been refused."""
    valid, rejected = check([record])
    assert len(valid) == 0 and len(rejected) == 1
    return [(e.field, e.reason) for e in rejected[0].errors]


def with_(**changes: Any) -> dict[str, Any]:
    """GOOD with ``changes``; a change to ``DROP`` leaves that field out."""
    return {k: v for k, v in {**GOOD, **changes}.items() if v is not DROP}


DROP = object()


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"item_id": DROP}, "item_id", "required"),
        ({"user_id": DROP}, "user_id", "required (or a session_id for an anonymous visitor)"),
        ({"user_id": None}, "user_id", "required (or a session_id for an anonymous visitor)"),
        ({"user_id": ""}, "user_id", "must not be empty"),  # one error, not also "required"
        ({"event_type": DROP}, "event_type", "required"),
        ({"timestamp": DROP}, "timestamp", "required"),
        ({"item_id": ""}, "item_id", "must not be empty"),
        ({"item_id": "   "}, "item_id", "must not be empty"),
        ({"item_id": "x" * 257}, "item_id", "longer than 256 characters"),
        ({"session_id": "s" * 300}, "session_id", "longer than 256 characters"),
        ({"user_id": "a\tb"}, "user_id", "contains control characters"),
        ({"event_id": "e\x00"}, "event_id", "contains control characters"),
        ({"user_id": 42}, "user_id", NOT_STRING),
        ({"item_id": 739079891}, "item_id", NOT_STRING),
        ({"event_id": 1.5}, "event_id", NOT_STRING),
        ({"event_type": "teleport"}, "event_type", UNKNOWN_TYPE),
        ({"value": math.inf}, "value", "must be finite"),
        ({"value": -math.inf}, "value", "must be finite"),
        ({"value": 10**400}, "value", "must be finite"),  # a JSON integer beyond float range
        ({"value": "abc"}, "value", "must be a number"),
        ({"value": True}, "value", "must be a number"),
        ({"value": [1]}, "value", "must be a number"),
        ({"event_type": "rating", "value": math.nan}, "value", "required for this event type"),
        ({"event_type": "rating"}, "value", "required for this event type"),
        ({"event_type": "play", "value": -1}, "value", "must be >= 0 for this event type"),
        ({"timestamp": "1994-12-31T23:59:59Z"}, "timestamp", "before 1995-01-01"),
        ({"timestamp": NOW + DAY + 1}, "timestamp", "more than 1 day(s) in the future"),
        ({"timestamp": 1e30}, "timestamp", "more than 1 day(s) in the future"),
        # 2023-06-01 in micro- and nanoseconds (Spark's, pandas' int64 times), as a JSON number
        # and as CSV text: read as milliseconds (any number above 1e11) it is millennia ahead
        ({"timestamp": GOOD_TS}, "timestamp", FINER % "microseconds"),
        ({"timestamp": str(GOOD_TS * 1000)}, "timestamp", FINER % "nanoseconds"),
        ({"timestamp": GOOD_TS * 1000}, "timestamp", FINER % "nanoseconds"),
        ({"timestamp": -1e30}, "timestamp", "before 1995-01-01"),
        ({"timestamp": "yesterday"}, "timestamp", NOT_A_TIME),
        ({"timestamp": True}, "timestamp", NOT_A_TIME),
        ({"timestamp": math.inf}, "timestamp", NOT_A_TIME),
        ({"timestamp": 10**400}, "timestamp", NOT_A_TIME),
        ({"colour": "red"}, "colour", UNKNOWN_FIELD),
        ({"timestap": 1}, "timestap", "unknown field (did you mean timestamp?)"),
        ({"context": "nope"}, "context", "not a JSON object"),
        ({"context": [1, 2]}, "context", "must be an object with string keys"),
        ({"context": 5}, "context", "must be an object with string keys"),
        (
            {"context": {"a": {"b": 1}}},
            "context",
            "values must be strings, numbers, booleans or null",
        ),
        ({"context": {"a": math.inf}}, "context", "values must be finite"),
        ({"context": {"k": "x" * 5000}}, "context", "larger than 4096 bytes"),
    ],
)
def test_each_bad_field_is_named_with_its_reason(changes: Any, field: str, reason: str) -> None:
    assert errors_of(with_(**changes)) == [(field, reason)]


@pytest.mark.parametrize("event_type", [3, ["view"], {"view": 1}])
def test_a_non_string_event_type_is_refused_not_a_crash(event_type: object) -> None:
    expected = [("event_type", NOT_STRING), ("event_type", UNKNOWN_TYPE)]
    assert errors_of(with_(event_type=event_type)) == expected


@pytest.mark.parametrize(
    "record",
    [
        GOOD,
        with_(item_id="x" * 256),  # the limit itself is allowed
        with_(timestamp="1995-01-01T00:00:00Z"),
        with_(timestamp=NOW + DAY - 1),
        with_(user_id=DROP, session_id="anon-1"),  # anonymous visitor
        with_(colour=None),  # an unknown field that is absent is no error
        with_(value="4.5"),  # numbers as text, as a CSV file spells them
        with_(context={"k": "x" * 4000}),
    ],
)
def test_valid_edge_cases_are_accepted(record: dict[str, Any]) -> None:
    valid, rejected = check([record])
    assert rejected == []
    assert len(valid) == 1


def test_all_errors_of_one_record_are_reported_together() -> None:
    record = {
        "user_id": 7,
        "event_type": "view",
        "value": math.inf,
        "timestamp": "1990-01-01T00:00Z",
    }
    assert sorted(errors_of(record)) == [
        ("item_id", "required"),
        ("timestamp", "before 1995-01-01"),
        ("user_id", NOT_STRING),
        ("value", "must be finite"),
    ]


def test_valid_neighbours_of_bad_records_survive() -> None:
    batch = [
        with_(item_id="a"),
        with_(item_id=1),
        with_(item_id="b", event_type="rating", value=4),
        with_(timestamp="soon"),
        with_(item_id="c"),
    ]
    valid, rejected = check(batch, offset=1000)
    assert valid["item_id"].tolist() == ["a", "b", "c"]
    assert [r.index for r in rejected] == [1001, 1003]
    assert rejected[0].payload == batch[1]
    assert rejected[1].payload == batch[3]
    assert rejected[1].reason == "timestamp: not a date-time (ISO 8601) or Unix time"


def test_canonical_frame() -> None:
    anonymous = with_(user_id=DROP, session_id="s", event_type="rating", value=3)
    valid, _ = check([GOOD, {**anonymous, "context": '{"b": 2, "a": "x"}'}])
    assert list(valid.columns) == list(EVENT_COLUMNS)
    assert valid["ts"].dtype == np.int64 and valid["value"].dtype == np.float64
    assert valid["ts"].tolist() == [GOOD_TS, GOOD_TS]
    assert math.isnan(valid["value"][0]) and valid["value"][1] == 3.0
    assert valid["user_id"][0] == "u1" and pd.isna(valid["user_id"][1])
    assert pd.isna(valid["session_id"][0]) and valid["session_id"][1] == "s"
    context = [None if pd.isna(v) else v for v in valid["context"]]
    assert context == [None, '{"a":"x","b":2}']  # compact JSON, sorted keys


def test_empty_records_are_rejected_not_dropped() -> None:
    valid, rejected = check([{}, {}])
    assert len(valid) == 0
    assert [r.index for r in rejected] == [0, 1]
    assert ("item_id", "required") in [(e.field, e.reason) for e in rejected[0].errors]
    valid, rejected = check([])
    assert (len(valid), rejected) == (0, [])


def test_ids_from_a_csv_keep_leading_zeros() -> None:
    csv = "user_id,item_id,event_type,timestamp\n007,0739079891,view,1685620800\n"
    valid, rejected = check(pd.read_csv(io.StringIO(csv), dtype=str).to_dict("records"))
    assert rejected == []
    assert (valid["user_id"][0], valid["item_id"][0]) == ("007", "0739079891")
    assert valid["ts"][0] == GOOD_TS


# ---- timestamps and deterministic ids --------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    [
        1_685_620_800_123,  # milliseconds (> 1e11)
        1_685_620_800.123,  # seconds
        "1685620800.123",
        "2023-06-01T12:00:00.123Z",
        "2023-06-01 12:00:00.123Z",
        "2023-06-01T14:00:00.123+02:00",
        "2023-06-01T07:00:00.123-0500",
        "2023-06-01T21:00:00.123+09",
    ],
)
def test_every_timestamp_spelling_gives_the_same_instant(timestamp: object) -> None:
    valid, rejected = check([with_(timestamp=timestamp)])
    assert rejected == []
    assert valid["ts"].tolist() == [GOOD_TS + 123_000]


NO_ZONE = (
    'has no time zone: add Z or an offset such as +01:00 (or set events.naive_timestamps = "utc")'
)


@pytest.mark.parametrize("timestamp", ["2023-06-01T12:00:00.123", "2023-06-01 12:00:00.123"])
def test_a_timestamp_without_a_zone_follows_the_setting(timestamp: str) -> None:
    """Once read as UTC without a word: from a sender in UTC+9, 9 hours off."""
    batch = [with_(timestamp=timestamp), with_(item_id="zoned")]
    valid, rejected = check(batch)  # the default: "reject"
    assert valid["item_id"].tolist() == ["zoned"]
    assert [(e.field, e.reason) for e in rejected[0].errors] == [("timestamp", NO_ZONE)]
    utc = SETTINGS.model_copy(update={"naive_timestamps": "utc"})
    valid, rejected = validate_events(batch, utc, now=NOW)
    assert rejected == [] and valid["ts"].tolist() == [GOOD_TS + 123_000, GOOD_TS]


def test_a_date_alone_has_no_zone_either() -> None:
    assert errors_of(with_(timestamp="2023-06-01")) == [("timestamp", NO_ZONE)]


def test_content_ids_are_deterministic() -> None:
    first, _ = check([GOOD, GOOD])
    again, _ = check([with_(timestamp=GOOD_TS // 1_000_000)])  # same instant, other spelling
    ids = first["event_id"].tolist()
    assert ids[0] == ids[1] == again["event_id"][0]
    assert len(ids[0]) == 32 and int(ids[0], 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"user_id": "u2"},
        {"session_id": "s1"},
        {"item_id": "i2"},
        {"event_type": "click"},
        {"value": 1.0},
        {"timestamp": "2023-06-01T12:00:00.000001Z"},
    ],
)
def test_content_ids_differ_when_content_differs(change: dict[str, Any]) -> None:
    base, _ = check([GOOD])
    other, _ = check([with_(**change)])
    assert base["event_id"][0] != other["event_id"][0]


def test_given_event_ids_are_kept() -> None:
    valid, _ = check([with_(event_id="client-1"), GOOD])
    assert valid["event_id"][0] == "client-1"
    assert valid["event_id"][1] != "client-1"


# ---- properties --------------------------------------------------------------------------------

_SAMPLES = ["view", "rating", "play", "", " ", "2023-06-01T12:00:00Z", "1685620800"]
_NUMBERS = st.integers() | st.integers(-(10**400), 10**400) | st.floats()
_OTHERS = st.none() | st.booleans() | st.text(max_size=12) | st.datetimes()
_SCALARS = _NUMBERS | _OTHERS | st.sampled_from(_SAMPLES)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=4,
)
_KEYS = st.sampled_from([*sorted(EVENT_INPUT_FIELDS), "extra", "Item_ID"])
_BATCHES = st.lists(st.dictionaries(_KEYS, _VALUES, max_size=9), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=_BATCHES, offset=st.integers(0, 10**6))
def test_every_record_is_accepted_or_rejected_exactly_once(
    batch: list[dict[str, Any]], offset: int
) -> None:
    valid, rejected = check(batch, offset=offset)
    assert len(valid) + len(rejected) == len(batch)
    indices = [r.index for r in rejected]
    assert indices == sorted(set(indices))
    assert all(offset <= i < offset + len(batch) for i in indices)
    assert all(r.errors for r in rejected)
    assert valid["item_id"].map(lambda v: isinstance(v, str) and v.strip() != "").all()
    assert valid["ts"].between(788_918_400_000_000, int((NOW + DAY) * 1e6)).all()
    assert np.isfinite(valid["value"].dropna()).all()


_IDS = st.text(
    st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/"),
    min_size=1,
    max_size=20,
).filter(str.strip)


_TYPES = st.sampled_from(["view", "click"])
_SECONDS = st.integers(800_000_000, 1_700_000_000)
_VALID = st.builds(dict, user_id=_IDS, item_id=_IDS, event_type=_TYPES, timestamp=_SECONDS)


@settings(max_examples=100, deadline=None)
@given(records=st.lists(_VALID, max_size=6))
def test_valid_records_all_pass_with_stable_ids(records: list[dict[str, Any]]) -> None:
    valid, rejected = check(records)
    assert rejected == []
    assert valid["item_id"].tolist() == [r["item_id"] for r in records]
    assert valid["ts"].tolist() == [r["timestamp"] * 1_000_000 for r in records]
    assert valid["event_id"].tolist() == check(records)[0]["event_id"].tolist()


def test_items_and_users_are_validated_one_by_one() -> None:
    records: list[Any] = [
        {"item_id": "0739079891", "tags": ["a"]},
        {"item_id": "a", "properties": {"p": math.nan}},
        {"item_id": 3},
        5,  # not an object at all
    ]
    items, bad = validate_items(records, offset=10)
    assert [i.item_id for i in items] == ["0739079891"]
    fields = [(r.index, r.errors[0].field) for r in bad]
    assert fields == [(11, "properties"), (12, "item_id"), (13, "record")]
    users, bad = validate_users([{"user_id": "u"}, {"user_id": 7}, {"user_id": "ok", "x": 1}])
    assert [u.user_id for u in users] == ["u"]
    assert [(r.index, r.errors[0].field) for r in bad] == [(1, "user_id"), (2, "x")]


def test_item_text_with_nul_is_refused_not_stored() -> None:
    from recsmith.events.validate import validate_items

    good, bad = validate_items([{"item_id": "a", "text": "x\x00y"}, {"item_id": "b", "text": "ok"}])
    assert [i.item_id for i in good] == ["b"]
    assert bad[0].index == 0 and bad[0].errors[0].field == "text"
    assert bad[0].errors[0].reason == "contains a NUL character"  # no "Value error, " prefix


def test_a_nul_in_any_category_or_tag_is_refused_with_the_field_named() -> None:
    from recsmith.events.validate import validate_items

    good, bad = validate_items(
        [
            {"item_id": "a", "categories": ["shoes", "x\x00"]},
            {"item_id": "b", "tags": ["ok", "red", "\x00"]},
            {"item_id": "c", "categories": ["shoes"], "tags": ["red"], "text": None},
        ]
    )
    assert [i.item_id for i in good] == ["c"]
    assert [(r.index, r.errors[0].field) for r in bad] == [(0, "categories"), (1, "tags")]
    assert all("NUL" in r.errors[0].reason for r in bad)


def test_a_nested_property_value_is_one_error_that_says_what_is_allowed() -> None:
    from recsmith.events.validate import validate_items

    good, bad = validate_items(
        [{"item_id": "a", "properties": {"size": {"w": 1}, "colours": ["red"], "price": 2.5}}]
    )
    assert good == []
    assert [(e.field, e.reason) for e in bad[0].errors] == [
        ("properties.size", "must be a string, number, boolean or null (not a list or an object)"),
        (
            "properties.colours",
            "must be a string, number, boolean or null (not a list or an object)",
        ),
    ]


@pytest.mark.parametrize(
    ("event_type", "value", "accepted"),
    [
        ("rating", 10, True),
        ("rating", -10, True),
        ("rating", 1, True),  # an explicit -1/+1 scale stays valid
        ("rating", -1, True),
        ("rating", 0.5, True),
        ("rating", 10.001, False),
        ("rating", -10.5, False),
        ("rating", 1e308, False),  # once: accepted, then "NaN encountered in factors"
        ("play", 0, True),
        ("play", 1e9, True),
        ("play", 1e9 + 1, False),
        ("view", 1e9, True),
        ("dwell", -1e9 - 1, False),
        ("purchase", 1e308, False),
        ("purchase", -5, False),  # a negative purchase, view, cart, click or dwell: a client bug
        ("purchase", -1e-9, False),
        ("purchase", 0, True),
        ("purchase", -0.0, True),
        ("view", -1, False),
        ("click", -1, False),
        ("add_to_cart", -2, False),
        ("dwell", -30, False),
        ("refund", -30, True),  # a type a deployment adds keeps the default range, negatives too
        ("refund", -1e9 - 1, False),
    ],
)
def test_values_are_held_to_their_type_range(event_type: str, value: float, accepted: bool) -> None:
    """The columnar validator (files) and the per-record one (HTTP batches) alike."""
    shop = EventSettings(weights={**SETTINGS.weights, "refund": -1.0})
    record = with_(event_type=event_type, value=value)
    _, small, _ = validate_small([record], shop, now=NOW, stamp_missing=False)
    valid, rejected = validate_events([record], shop, now=NOW)
    assert len(valid) == int(accepted)
    assert [r.errors for r in small] == [r.errors for r in rejected]
    if not accepted:
        low, high = {"rating": (-10, 10), "refund": (-1e9, 1e9)}.get(event_type, (0, 1e9))
        reason = f"must be within [{low:g}, {high:g}] for this event type (events.value_range)"
        assert [(e.field, e.reason) for e in rejected[0].errors] == [("value", reason)]


def test_a_configured_range_replaces_the_default() -> None:
    five_stars = EventSettings(
        weights={**SETTINGS.weights, "like": 1.0},
        value_range={"rating": (1, 5)},
        default_value_range=(0, 100),
    )
    records = [
        with_(event_type="rating", value=5),
        with_(event_type="rating", value=6),
        with_(event_type="rating", value=0.5),
        with_(event_type="like", value=100),
        with_(event_type="like", value=101),
        with_(event_type="purchase", value=-1),  # built-in range kept: the table lists no purchase
    ]
    valid, rejected = validate_events(records, five_stars, now=NOW)
    assert valid["value"].tolist() == [5, 100]
    assert [r.index for r in rejected] == [1, 2, 4, 5]
    assert "[0, 100]" in rejected[2].errors[0].reason
    assert "[0, 1e+09]" in rejected[3].errors[0].reason


_ANY = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "u1", "view", "rating", "a\ud800", "x/y", "a\tb", "4.5", "abc"]),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["2023-06-01T12:00:00Z", "2023-06-01T12:00:00", "1990-01-01T00:00Z"]),
    st.just([1]),
    st.just({"a": 1}),
)
_HOSTILE_RECORD = st.dictionaries(
    st.sampled_from([*sorted(EVENT_INPUT_FIELDS), "colour", "k\udc00"]), _ANY, max_size=9
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(st.one_of(_HOSTILE_RECORD, st.just(GOOD)), min_size=1, max_size=8))
def test_records_and_a_frame_of_them_validate_alike(batch: list[dict[str, Any]]) -> None:
    """HTTP hands over records, imports a frame of object columns: one validator, same verdicts."""
    from recsmith.events.records import records_frame

    listed, listed_rejected = check(batch)
    framed, framed_rejected = check(records_frame(batch))  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(listed, framed)
    assert listed_rejected == framed_rejected
    assert len(listed) + len(listed_rejected) == len(batch)
