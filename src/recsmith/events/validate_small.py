"""Validation of a few events, record by record: the same verdicts as ``validate``'s columns.

Single events are what browsers and apps send, and a group commit of them holds a handful. The
column checks (``validate._validate``) cost ~0.8 ms per call whatever the group's size — dozens of
numpy and pandas passes of fixed overhead each — which was most of a small group's CPU. Here each
record is checked with plain Python in the same order, giving the same canonical frame and the same
field errors (names, reasons, order); ``tests/events/test_validate_small_equivalence.py`` holds it
to the column checks, which stay the reference. The rare values whose reading is pandas' own (a
number or a date-time written as text) are read by the very same column functions, one value at a
time.

Only records of JSON values (what ``json.loads`` gives: the HTTP routes) take this path, so
"missing" means ``None`` (and NaN, which strict JSON cannot carry); anything else, or a larger
batch, is validated column-wise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.columns import (
    _HAS_ZONE,
    _MIN_TS_US,
    _MS_THRESHOLD,
    NO_ZONE,
    future_reason,
    payload,
    read_context,
    sent_as_text,
    to_float,
)
from recsmith.events.schema import EVENT_COLUMNS, EVENT_INPUT_FIELDS, FieldError, Rejection
from recsmith.events.validate import (
    _ID_FIELDS,
    MAX_POSITION,
    NUMBER_FIELDS,
    STAMP_RULE,
    content_event_ids,
    unknown_event_field,
)
from recsmith.ids import id_problem
from recsmith.surrogates import UNENCODABLE, has_surrogate, readable

#: Up to this many records a batch is validated here; above it column-wise (measured crossover:
#: BENCHMARKS.md section 6, "Third pass").
SMALL_BATCH = 32
#: The types ``json.loads`` produces: records holding anything else take the column checks.
_JSON_TYPES = frozenset({str, int, float, bool, type(None), dict, list})
_NOT_A_TIME = "not a date-time (ISO 8601) or Unix time"
_SORTED_FIELDS = tuple(sorted(EVENT_INPUT_FIELDS))  # the column checks' settle order


def takes_records(records: object) -> bool:
    """Whether ``records`` is a small list of JSON objects, which this module validates."""
    return (
        isinstance(records, list)
        and len(records) <= SMALL_BATCH
        and all(
            type(r) is dict and all(type(v) in _JSON_TYPES for v in r.values()) for r in records
        )
    )


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _absent(v: Any) -> bool:
    return _missing(v) or (isinstance(v, str) and v == "")


def _number(v: Any) -> float:
    """``columns.to_float`` of one value (booleans are never asked: both callers blank them)."""
    if isinstance(v, float):
        return v
    if isinstance(v, int):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    if isinstance(v, str):  # pandas' own reading of numeric text, exactly
        return float(to_float(np.array([v], dtype=object))[0])
    return math.nan


class _Record:
    """One record's errors in the order the column checks add them, and its settled fields."""

    __slots__ = ("errors", "settled")

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.settled: set[str] = set()

    def add(self, field: str, reason: str) -> None:
        if field not in self.settled:
            self.errors.append(FieldError(field, reason))


def validate_small(
    records: Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    now: float | None = None,
    offset: int = 0,
    stamp_missing: bool,
    typed_numbers: bool = False,
) -> tuple[pd.DataFrame, list[Rejection], np.ndarray]:
    """``validate._validate`` for records of JSON values, one record at a time (see module
    docstring): the canonical frame, one rejection per bad record, and which valid rows were
    stamped with the time received."""
    rows, rejected, stamped = validate_small_rows(
        records,
        settings,
        now=now,
        offset=offset,
        stamp_missing=stamp_missing,
        typed_numbers=typed_numbers,
    )
    return frame_of_rows(rows), rejected, stamped


def validate_small_rows(
    records: Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    now: float | None = None,
    offset: int = 0,
    stamp_missing: bool,
    typed_numbers: bool = False,
) -> tuple[list[tuple[Any, ...]], list[Rejection], np.ndarray]:
    """``validate_small`` with the valid events as plain rows (``EVENT_COLUMNS`` order, content
    ids filled in) instead of the frame: what a store inserts from directly (``store.append_rows``)
    without reading every cell back out of a frame; ``frame_of_rows`` makes the frame.
    ``typed_numbers``: a number sent as a string is refused (``validate.NUMBER_FIELDS``)."""
    received = time.time() if now is None else now
    names = {name: n for n, name in enumerate(dict.fromkeys(chain.from_iterable(records)))}
    rows: list[tuple[Any, ...]] = []
    stamped: list[bool] = []
    rejected: list[Rejection] = []
    for row, record in enumerate(records):
        outcome = _check(record, names, settings, received, stamp_missing, typed_numbers)
        if isinstance(outcome, _Record):
            rejected.append(Rejection(offset + row, tuple(outcome.errors), payload(record)))
        else:
            rows.append(outcome[0])
            stamped.append(outcome[1])
    return with_content_ids(rows), rejected, np.array(stamped, dtype=bool)


def _check(
    record: Mapping[str, Any],
    names: Mapping[Any, int],
    settings: EventSettings,
    received: float,
    stamp_missing: bool,
    typed_numbers: bool,
) -> _Record | tuple[tuple[Any, ...], bool]:
    """The record's canonical row and whether it was stamped, or its errors."""
    out = _Record()
    col: dict[str, Any] = {}
    for name in _SORTED_FIELDS:
        v = record.get(name)
        if isinstance(v, str) and has_surrogate(v):
            out.add(name, UNENCODABLE)
            out.settled.add(name)
            v = None
        col[name] = v
    unknown = [k for k in record if k not in EVENT_INPUT_FIELDS and not _missing(record[k])]
    for name in sorted(unknown, key=names.__getitem__):  # the batch's first-seen key order
        out.add(readable(str(name)), unknown_event_field(name))

    for name in _ID_FIELDS:
        _check_string(col[name], name, out, settings.max_id_length, required=name == "item_id")
    if _missing(col["user_id"]) and _absent(col["session_id"]):
        out.add("user_id", "required (or a session_id for an anonymous visitor)")

    event_type = col["event_type"]
    _check_string(event_type, "event_type", out, settings.max_id_length, required=True)
    weight = settings.weights.get(event_type) if isinstance(event_type, str) else None
    if not _absent(event_type) and weight is None:
        known = ", ".join(sorted(settings.weights))
        out.add("event_type", f"unknown event type (known: {known})")

    numbers = {
        name: _refuse_text(col[name], name, reason, out) if typed_numbers else col[name]
        for name, reason in NUMBER_FIELDS.items()
    }
    value = _check_value(numbers["value"], out)
    if isinstance(weight, str) and math.isnan(value) and _absent(col["value"]):
        out.add("value", "required for this event type")
    negative_log = weight == "log_value" and value < 0
    if negative_log:
        out.add("value", "must be >= 0 for this event type")
    if not negative_log and not math.isinf(value):
        _check_range(event_type, value, settings, out)

    timestamp, missing_reason, stamped = col["timestamp"], "required", False
    if stamp_missing:
        stamped = _absent(timestamp) and not _absent(col["event_id"])
        timestamp = received if stamped else timestamp
        missing_reason = STAMP_RULE
    ts = _check_timestamp(timestamp, out, received, settings, missing_reason)
    context, reason = read_context(col["context"], settings.max_context_bytes)
    if reason:
        out.add("context", reason)
    position = _check_position(numbers["position"], out)
    if not _absent(col["position"]) and _missing(col["recommendation_id"]):
        out.add("position", "needs a recommendation_id (the list the position is in)")
    if out.errors:
        return out

    def text(name: str) -> Any:
        return None if _absent(col[name]) else col[name]

    canonical = (
        text("event_id"),
        text("user_id"),
        text("session_id"),
        col["item_id"],
        event_type,
        value,
        ts,
        context,
        text("recommendation_id"),
        position,
    )
    return canonical, stamped


def _check_string(v: Any, field: str, out: _Record, max_len: int, *, required: bool) -> None:
    """``columns.check_strings`` for one value."""
    if _missing(v):
        if required:
            out.add(field, "required")
        return
    if not isinstance(v, str):
        out.add(field, "must be a string (quote numeric ids)")
        return
    problem = id_problem(v, max_len)
    if problem is not None:
        out.add(field, problem)


def _refuse_text(v: Any, name: str, reason: str, out: _Record) -> Any:
    """``columns.refuse_text`` for one value (a blank string is no value, read as absent)."""
    if not isinstance(v, str) or not v.strip():
        return v
    out.add(name, sent_as_text(v, reason))
    return None


def _check_value(v: Any, out: _Record) -> float:
    """``columns.parse_value`` for one value."""
    if _missing(v) or (isinstance(v, str) and not v.strip()):
        return math.nan
    number = math.nan if isinstance(v, bool) else _number(v)
    if math.isnan(number):
        out.add("value", "must be a number")
    elif math.isinf(number):
        out.add("value", "must be finite")
    return number


def _check_range(event_type: Any, value: float, settings: EventSettings, out: _Record) -> None:
    """``columns.check_value_range`` for one value (NaN, an absent value, passes)."""
    low, high = settings.default_value_range
    if isinstance(event_type, str) and event_type in settings.value_range:
        low, high = settings.value_range[event_type]
    low, high = float(low), float(high)
    if value < low or value > high:
        out.add(
            "value",
            f"must be within [{low:g}, {high:g}] for this event type (events.value_range)",
        )


def _check_timestamp(
    v: Any, out: _Record, received: float, settings: EventSettings, missing_reason: str
) -> int:
    """``columns.parse_timestamp`` for one value: Unix microseconds (0 where unreadable)."""
    if _absent(v):
        out.add("timestamp", missing_reason)
        return 0
    if isinstance(v, bool):
        out.add("timestamp", _NOT_A_TIME)
        return 0
    numeric = _number(v)
    if math.isinf(numeric):
        out.add("timestamp", _NOT_A_TIME)
        return 0
    if math.isfinite(numeric):
        seconds = numeric / 1000.0 if abs(numeric) > _MS_THRESHOLD else numeric
        ts = round(min(max(seconds, -9e12), 9e12) * 1_000_000)
    else:  # text that is not a number: an ISO 8601 date-time, read by pandas as the column is
        text = str(v)
        parsed = pd.to_datetime([text], utc=True, errors="coerce", format="ISO8601")
        if parsed.isna()[0]:
            out.add("timestamp", _NOT_A_TIME)
            return 0
        ts = int(parsed.to_numpy(dtype="datetime64[us]").astype(np.int64)[0])
        if settings.naive_timestamps == "reject" and not _HAS_ZONE.search(text):
            out.add("timestamp", NO_ZONE)
            return ts
    if ts < _MIN_TS_US:
        out.add("timestamp", "before 1995-01-01")
    max_future_s = settings.max_future_seconds
    now_us = int(received * 1_000_000)
    if ts > now_us + int(max_future_s * 1_000_000):
        out.add("timestamp", future_reason(numeric, now_us, max_future_s))
    return ts


def _check_position(v: Any, out: _Record) -> int | None:
    """``validate._parse_position`` for one value."""
    if _absent(v):
        return None
    if isinstance(v, str) and v.isascii() and v.isdigit():
        number = int(v)
    elif isinstance(v, int) and not isinstance(v, bool):
        number = v
    elif isinstance(v, float) and math.isfinite(v) and v.is_integer():
        number = int(v)
    else:
        out.add("position", "must be a whole number (1 = first shown)")
        return None
    if not 1 <= number <= MAX_POSITION:
        out.add("position", f"must be from 1 to {MAX_POSITION}")
        return None
    return number


def with_content_ids(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``rows`` with the content id (``validate.content_event_ids``) of each event sent without an
    id in its ``event_id`` place; the others unchanged."""
    no_id = [n for n, row in enumerate(rows) if row[0] is None]
    if not no_id:
        return rows
    picked = [rows[n] for n in no_id]
    columns = {
        name: np.fromiter(values, _DTYPES.get(name, object), len(picked))
        for name, values in zip(EVENT_COLUMNS, zip(*picked, strict=True), strict=True)
    }
    out = list(rows)
    for n, event_id in zip(no_id, content_event_ids(columns).tolist(), strict=True):
        out[n] = (event_id, *rows[n][1:])
    return out


def frame_of_rows(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """The canonical frame of valid rows (``validate_small_rows``), with the column checks'
    dtypes. A column of text alone is given its string dtype here: left to pandas, which infers
    the same dtype by inspecting each value, it cost ~40 µs a column, half of building the frame
    of a group of single events."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(EVENT_COLUMNS)
    canonical = {
        name: _column(values, _DTYPES.get(name, object))
        for name, values in zip(EVENT_COLUMNS, columns, strict=True)
    }
    return pd.DataFrame(canonical, copy=False)  # no columns=: it reindexes (~0.2 ms)


def _column(values: tuple[Any, ...], dtype: Any) -> Any:
    if dtype is object and values and all(type(v) is str for v in values):
        return pd.array(values, dtype=_TEXT)
    return np.fromiter(values, dtype, len(values))


_DTYPES: dict[str, Any] = {"value": np.float64, "ts": np.int64}
#: the dtype pandas infers for a column of text (looked up once: resolving "str" costs per call)
_TEXT = pd.StringDtype(na_value=np.nan)
