"""The per-record validator (``validate_small``) against the column checks, its oracle: for many
generated groups of valid and invalid JSON records, the same canonical frame, the same rejections
(index, field names, reasons, their order, payloads) and the same stamped rows.

Generation covers every field and rule: ids (empty, blank, too long, with '/', control characters,
lone surrogates, numbers), actors, known/unknown event types, values (numeric text, booleans,
huge ints, 1e400, out of each type's range, negative on a log type), timestamps (seconds,
milliseconds, ISO text with and without a zone, garbage, too old, in the future, absent with and
without an event_id), contexts (objects, JSON text, nested values, surrogates, too large), positions
(with and without a recommendation_id) and unknown fields. Hypothesis runs derandomised, so the
cases are the same on every run.
"""

from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsmith.config import EventSettings
from recsmith.events.validate import _validate
from recsmith.events.validate_small import takes_records, validate_small

NOW = 1_760_000_000.0
SETTINGS = EventSettings(max_id_length=12, max_context_bytes=40)
UTC_SETTINGS = EventSettings(naive_timestamps="utc", max_future_seconds=0)

ids = st.one_of(
    st.sampled_from(["u1", "i-2", "", "  ", "a/b", "x\ud800", "tab\there", "é", "x" * 13, "0"]),
    st.text(max_size=14),
    st.integers(-5, 5),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=1),
)
numbers = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.sampled_from([2**1023 + 1, -(2**1030), 10**400, 1e9, 1e9 + 1, -10.5, 10.0, 0, -1]),
    st.sampled_from([10.000001, -10.000001, -1e9, -1e9 - 1, 1e11, 1e11 + 1, -0.0]),
)
values = st.one_of(
    numbers,
    st.sampled_from(["3.5", " 3 ", "", "  ", "inf", "nan", "1e400", "0x10", "abc", "\ud800"]),
    st.booleans(),
    st.none(),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
timestamps = st.one_of(
    st.floats(min_value=7e8, max_value=NOW + 200_000),
    st.integers(min_value=7e11, max_value=int(NOW * 1000) + 200_000_000),
    numbers,
    # the edges: 1995-01-01, "now" plus the allowed future, seconds against milliseconds
    st.sampled_from([788_918_400, 788_918_399.999999, NOW + 86_400, NOW + 86_400.000001]),
    st.sampled_from([NOW, NOW + 0.000001, 788_918_400_000, 788_918_399_999]),
    # micro- and nanoseconds, which a reason names (seconds in range in those units)
    st.sampled_from([int(NOW * 1e6), int(NOW * 1e9), str(int(NOW * 1e6)), 788_918_400 * 10**9]),
    st.sampled_from(
        [
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:00:00",
            "2026-01-01 10:00:00+01:00",
            "2026-01-01T10:00:00.123456-0500",
            "2026-01-01",
            "1990-05-05T00:00:00Z",
            "2099-01-01T00:00:00Z",
            "1700000000",
            "1700000000000",
            "1995-01-01T00:00:00Z",
            "1994-12-31T23:59:59.999999Z",
            "yesterday",
            "",
            "inf",
            "t\ud800",
        ]
    ),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=1),
)
contexts = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["page", "p\ud800", "n"]),
        st.one_of(st.integers(), st.text(max_size=50), st.none(), st.lists(st.none(), max_size=1)),
        max_size=2,
    ),
    st.sampled_from(['{"a": 1}', "[1]", "{not json", "", '{"a": 1e400}', "x\ud800"]),
    st.integers(),
    st.dictionaries(st.just("f"), st.sampled_from([1e400, -1e400, 1.5]), min_size=1),
)
positions = st.one_of(
    st.none(),
    st.integers(-2, 10_002),
    st.sampled_from([0, 1, 10_000, 10_001, 10_000.0, 10_001.0, "10000", "10001"]),
    st.sampled_from(["3", "0012", "x", "", "١٢", 2.0, 2.5, 1e400, True, "\ud800"]),
)
FIELDS = {
    "event_id": ids,
    "user_id": ids,
    "session_id": ids,
    "item_id": ids,
    "recommendation_id": ids,
    "event_type": st.one_of(
        st.sampled_from(["view", "rating", "play", "purchase", "nope", "", "\ud800"]), ids
    ),
    "value": values,
    "timestamp": timestamps,
    "context": contexts,
    "position": positions,
    "extra": values,
    "b\ud800d": values,
    "zzz": values,
}
VALID = st.fixed_dictionaries(
    {
        "event_id": st.one_of(st.none(), st.text("abc", min_size=1, max_size=5)),
        "user_id": st.sampled_from(["u1", "u2"]),
        "item_id": st.sampled_from(["i1", "i2", "i3"]),
        "event_type": st.sampled_from(["view", "rating", "play"]),
        "value": st.integers(0, 10),
        "timestamp": st.one_of(st.floats(min_value=8e8, max_value=NOW), st.none()),
    },
    optional={"context": st.just({"page": "home"}), "session_id": st.just("s1")},
)
records = st.one_of(
    VALID,
    st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none()).flatmap(
        lambda keys: st.fixed_dictionaries({k: FIELDS[k] for k in keys})
    ),
)


def assert_same(
    group: list[dict], event_settings: EventSettings, stamp_missing: bool, typed: bool = False
) -> None:
    expected_frame, expected_rejected, expected_stamped = _validate(
        group, event_settings, NOW, 7, stamp_missing=stamp_missing, typed_numbers=typed
    )
    frame, rejected, stamped = validate_small(
        group, event_settings, now=NOW, offset=7, stamp_missing=stamp_missing, typed_numbers=typed
    )
    pd.testing.assert_frame_equal(frame, expected_frame)
    assert rejected == expected_rejected
    assert stamped.tolist() == expected_stamped.tolist()


@settings(
    max_examples=1500,
    database=None,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    group=st.lists(records, min_size=1, max_size=6),
    stamp_missing=st.booleans(),
    utc=st.booleans(),
    typed=st.booleans(),
)
def test_the_per_record_validator_agrees_with_the_column_checks(
    group: list[dict], stamp_missing: bool, utc: bool, typed: bool
) -> None:
    assert takes_records(group)
    assert_same(group, UTC_SETTINGS if utc else SETTINGS, stamp_missing, typed)


def test_the_generated_cases_reach_both_verdicts_and_every_field() -> None:
    """The generator is worth its cases: they hold accepted events and rejections naming each
    field (checked on a fixed draw, so a strategy that stopped producing some field fails)."""
    fields: set[str] = set()
    accepted = 0

    @settings(max_examples=1500, derandomize=True, deadline=None, database=None)
    @given(group=st.lists(records, min_size=1, max_size=6))
    def collect(group: list[dict]) -> None:
        nonlocal accepted
        frame, rejected, _ = validate_small(group, SETTINGS, now=NOW, stamp_missing=True)
        accepted += len(frame)
        fields.update(e.field for r in rejected for e in r.errors)

    collect()
    assert accepted > 500
    assert {*FIELDS} - {"b\ud800d"} | {"b\\ud800d"} <= fields


def test_only_small_batches_of_json_objects_take_the_per_record_path() -> None:
    record = {"user_id": "u", "item_id": "i", "event_type": "view", "timestamp": NOW}
    assert takes_records([record] * 32)
    assert not takes_records([record] * 33)
    assert not takes_records([{**record, "position": pd.NA}])
    assert not takes_records(pd.DataFrame([record]))
