"""Column checks behind event validation: each turns one input column into parsed values and
adds (row mask, field, reason) triples to an ``Errors`` collector, all as vectorised masks.

Columns are object numpy arrays, not pandas Series: a browser sends one event per request, and
each Series operation costs tens of microseconds of fixed overhead whatever its length, which
made validating one event cost milliseconds. The masks come from C-level ``map`` passes and
numpy, which are as fast per element for a million-row import.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from recsmith.config import EventSettings
from recsmith.events.schema import MIN_TIMESTAMP, FieldError, Rejection
from recsmith.ids import id_problems
from recsmith.surrogates import UNENCODABLE, any_surrogate, storable, surrogate_mask

_MIN_TS_US = int(MIN_TIMESTAMP.timestamp() * 1_000_000)
#: Numbers above this are read as milliseconds, not seconds (1e11 s is the year 5138).
_MS_THRESHOLD = 1e11
#: Finer units a Unix number is often written in (Spark's and pandas' int64 times), by how many
#: make a second: read as milliseconds such a time lies millennia ahead.
_FINER_UNITS = (("microseconds", 1e6), ("nanoseconds", 1e9))


def missing_mask(col: np.ndarray) -> np.ndarray:
    """Null: None, NaN or pandas' NA."""
    return pd.isna(col)


def str_mask(col: np.ndarray) -> np.ndarray:
    """Which entries are str."""
    return np.fromiter(map(isinstance, col, repeat(str)), bool, len(col))


def blank_mask(col: np.ndarray, is_str: np.ndarray) -> np.ndarray:
    """Which entries are strings of whitespace only (or empty)."""
    out = np.zeros(len(col), dtype=bool)
    strings = col[is_str].tolist()
    out[is_str] = ~np.fromiter(map(str.strip, strings), bool, len(strings))
    return out


def empty_mask(col: np.ndarray) -> np.ndarray:
    """Holds nothing: null, NaN, or a string of whitespace only (or empty) — no value to the
    validator (``parse_value``), and a blank cell to the importer's column rules."""
    return missing_mask(col) | blank_mask(col, str_mask(col))


def absent_mask(col: np.ndarray) -> np.ndarray:
    """Absent: null, NaN or the empty string (how CSV files spell a missing field)."""
    return missing_mask(col) | (col == "")


def bool_mask(col: np.ndarray) -> np.ndarray:
    return np.fromiter(map(isinstance, col, repeat(bool | np.bool_)), bool, len(col))


def by_value(col: np.ndarray, table: Mapping[str, Any], default: Any, dtype: type) -> np.ndarray:
    """Per-row ``table[value]`` (``default`` for other values), by one C-level ``map`` of the
    dict's ``get``. Non-strings are blanked first: a list or dict would make the hash lookup
    raise ``TypeError``."""
    keys = np.where(str_mask(col), col, None).tolist()
    return np.fromiter(map(table.get, keys, repeat(default)), dtype, len(keys))


def flag_by_value(col: np.ndarray, table: Mapping[str, bool]) -> np.ndarray:
    """Per-row flag from a small table keyed by the column's value (False if absent)."""
    return by_value(col, table, False, bool)


class Errors:
    """Collects (row mask, field, reason) triples and turns them into per-record rejections."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[np.ndarray, str, str | np.ndarray]] = []
        self.settled: dict[str, np.ndarray] = {}

    def add(self, mask: np.ndarray, field: str, reason: str | np.ndarray) -> None:
        settled = self.settled.get(field)
        if settled is not None:
            mask = mask & ~settled
        if mask.any():
            self.items.append((mask, field, reason))

    def settle(self, mask: np.ndarray, field: str, reason: str) -> None:
        """The one error of ``field`` in these rows: later checks of the field skip them (a value
        blanked because it cannot even be read must not also be "required")."""
        self.add(mask, field, reason)
        self.settled[field] = self.settled.get(field, np.zeros(self.n, dtype=bool)) | mask

    @property
    def bad(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _, _ in self.items:
            out |= mask
        return out

    def rejections(
        self, record: Callable[[int], pd.Series | Mapping[str, Any]], offset: int
    ) -> list[Rejection]:
        """One rejection per bad row; ``record(row)`` gives the row as sent, for its payload."""
        per_row: dict[int, list[FieldError]] = {}
        for mask, field, reason in self.items:
            for row in np.flatnonzero(mask):
                text = reason if isinstance(reason, str) else str(reason[row])
                per_row.setdefault(int(row), []).append(FieldError(field, text))
        return [
            Rejection(offset + row, tuple(errs), payload(record(row)))
            for row, errs in sorted(per_row.items())
        ]


def payload(row: pd.Series | Mapping[str, Any]) -> dict[str, Any]:
    """A refused record as the dead letters keep it: missing values left out, numpy scalars as
    plain ones, anything not JSON-like as text, and text UTF-8 cannot encode escaped (``storable``)
    so that the refusal itself can be stored."""
    out: dict[str, Any] = {}
    for key, val in row.items():
        if val is None or (isinstance(val, float) and math.isnan(val)):
            continue
        if isinstance(val, np.generic):
            val = val.item()
        out[str(key)] = val if isinstance(val, str | int | float | bool | dict | list) else str(val)
    return storable(out)


def settle_unencodable(col: np.ndarray, field: str, errors: Errors) -> np.ndarray:
    """``col`` with each string UTF-8 cannot encode blanked to None, after naming it in ``errors``
    as the field's one error: later checks (and pandas' own string arrays, which are UTF-8) then
    never see it. One joined scan passes a clean column."""
    bad = surrogate_mask(col)
    if not bad.any():
        return col
    errors.settle(bad, field, UNENCODABLE)
    return np.where(bad, None, col)


def check_strings(
    col: np.ndarray, field: str, errors: Errors, max_len: int, required: bool
) -> None:
    """Present values must be strings that pass the id rule (``recsmith.ids``)."""
    missing = missing_mask(col)
    if required:
        errors.add(missing, field, "required")
    is_str = str_mask(col)
    errors.add(~missing & ~is_str, field, "must be a string (quote numeric ids)")
    reasons = np.full(len(col), None, dtype=object)
    reasons[is_str] = id_problems(col[is_str], max_len)
    errors.add(np.not_equal(reasons, None), field, reasons)


def huge_int_to_inf(v: Any) -> Any:
    """An int beyond float range as +-inf; any other value as it is (a large int that fits stays
    itself, so its float does not depend on whether a neighbour in the column overflowed)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**1023:
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    return v


def float_texts(values: np.ndarray, missing: str = "") -> list[str]:
    """``repr`` of each float (``missing`` for NaN), computed once per distinct bit pattern: a
    column holds few distinct values (ratings, none at all), and bits rather than ``==`` keep
    -0.0 apart from 0.0. Content ids hash these texts (``validate.content_event_ids``)."""
    out = np.full(len(values), missing, dtype=object)
    present = ~np.isnan(values)
    bits, inverse = np.unique(values[present].view(np.int64), return_inverse=True)
    texts = np.array([repr(v) for v in bits.view(np.float64).tolist()], dtype=object)
    out[present] = texts[inverse]
    return out.tolist()


def to_float(col: np.ndarray) -> np.ndarray:
    """Floats, NaN where not numeric. JSON allows integers beyond float range (``1e400`` written
    out); ``pd.to_numeric`` raises OverflowError on those, so they become +-inf instead."""
    try:
        numbers = pd.to_numeric(col, errors="coerce")
    except OverflowError:
        numbers = pd.to_numeric(
            np.fromiter(map(huge_int_to_inf, col), object, len(col)), errors="coerce"
        )
    return np.array(numbers, dtype=np.float64)


def sent_as_text(v: str, reason: str) -> str:
    """``reason`` for a number sent as a JSON string, quoting the string (its start, when long):
    ``must be a number, got the string '5'``."""
    shown = v if len(v) <= 40 else v[:40] + "…"
    return f"{reason}, got the string {shown!r}"


def refuse_text(col: np.ndarray, name: str, reason: str, errors: Errors) -> np.ndarray:
    """``col`` with its strings refused as ``sent_as_text`` says and then read as absent. Typed
    JSON (HTTP, streams) has numbers: "5" there is a client's bug (a form field passed on as
    text) that an import's text would hide; a file's cells are text, and parsed as numbers. An
    empty (or blank) string is no value, as in a file: form serialisers send "" for an empty
    field, and it is read as absent."""
    strings = str_mask(col)
    texts = strings & ~blank_mask(col, strings)
    if not texts.any():
        return col
    reasons = np.full(len(col), None, dtype=object)
    reasons[texts] = [sent_as_text(v, reason) for v in col[texts]]
    errors.add(texts, name, reasons)
    return np.where(texts, None, col)


def parse_value(col: np.ndarray, errors: Errors) -> np.ndarray:
    missing = empty_mask(col)
    is_bool = bool_mask(col)
    numbers = to_float(np.where(is_bool, None, col))
    errors.add(~missing & (is_bool | np.isnan(numbers)), "value", "must be a number")
    errors.add(~missing & np.isinf(numbers), "value", "must be finite")
    numbers[missing] = np.nan
    return numbers


def check_value_range(
    event_type: np.ndarray, value: np.ndarray, settings: EventSettings, errors: Errors
) -> None:
    """Values outside their type's ``events.value_range`` (else ``default_value_range``) are
    refused, naming the range: 1e308 on a rating once reached iALS and made NaN factors."""
    low, high = settings.default_value_range
    lows = by_value(event_type, {t: r[0] for t, r in settings.value_range.items()}, low, float)
    highs = by_value(event_type, {t: r[1] for t, r in settings.value_range.items()}, high, float)
    outside = (value < lows) | (value > highs)  # False where value is NaN (absent)
    if not outside.any():
        return
    reasons = np.full(len(value), None, dtype=object)
    rows = np.flatnonzero(outside)
    reasons[rows] = [
        f"must be within [{lows[r]:g}, {highs[r]:g}] for this event type (events.value_range)"
        for r in rows
    ]
    errors.add(outside, "value", reasons)


#: A time of day followed by a zone: ``Z`` or an offset (``+01:00``, ``-0500``, ``+09``).
_HAS_ZONE = re.compile(
    r"[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)\s*$"
)
NO_ZONE = (
    'has no time zone: add Z or an offset such as +01:00 (or set events.naive_timestamps = "utc")'
)


def future_reason(numeric: float, now_us: int, max_future_s: float) -> str:
    """Why a timestamp ``numeric`` (NaN for text) read as more than ``max_future_s`` ahead is
    refused. Where the number, read in micro- or nanoseconds, is a time between 1995 and that
    limit, the reason names the unit: "in the future" alone sent the owner of a file of
    microsecond times looking for a clock problem."""
    reason = f"more than {max_future_s / 86400:g} day(s) in the future"
    for unit, per_second in _FINER_UNITS:
        seconds = numeric / per_second
        if _MIN_TS_US <= seconds * 1_000_000 <= now_us + max_future_s * 1_000_000:
            return (
                f"{reason} as Unix milliseconds (a number above 1e11): in {unit}? "
                "give seconds or milliseconds"
            )
    return reason


def parse_timestamp(
    col: np.ndarray,
    errors: Errors,
    now_us: int,
    max_future_s: float,
    naive: str = "reject",
    missing_reason: str = "required",
) -> np.ndarray:
    """Unix microseconds from Unix seconds or milliseconds or ISO 8601 text. Text without a time
    zone is refused when ``naive`` is "reject" (``events.naive_timestamps``), else read as UTC.
    An absent timestamp is an error saying ``missing_reason``."""
    missing = absent_mask(col)
    errors.add(missing, "timestamp", missing_reason)
    is_bool = bool_mask(col)
    numeric = to_float(np.where(is_bool, None, col))
    ts_us = np.zeros(len(col), dtype=np.int64)
    finite = np.isfinite(numeric)
    seconds = np.where(np.abs(numeric) > _MS_THRESHOLD, numeric / 1000.0, numeric)
    # clipped far outside the accepted range: absurd numbers fail the range checks, never wrap
    ts_us[finite] = np.round(np.clip(seconds[finite], -9e12, 9e12) * 1_000_000).astype(np.int64)
    text_rows = ~missing & ~finite & ~is_bool & ~np.isinf(numeric)
    unparsed = np.zeros(len(col), dtype=bool)
    if text_rows.any():
        texts = [str(v) for v in col[text_rows]]
        parsed = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
        ok = np.asarray(parsed.notna())
        idx = np.flatnonzero(text_rows)
        ts_us[idx[ok]] = parsed[ok].to_numpy(dtype="datetime64[us]").astype(np.int64)
        unparsed[idx[~ok]] = True
        errors.add(unparsed, "timestamp", "not a date-time (ISO 8601) or Unix time")
        if naive == "reject":
            zoned = np.fromiter(map(bool, map(_HAS_ZONE.search, texts)), bool, len(texts))
            no_zone = np.zeros(len(col), dtype=bool)
            no_zone[idx[ok & ~zoned]] = True
            errors.add(no_zone, "timestamp", NO_ZONE)
            unparsed = unparsed | no_zone  # a new array: ``errors`` keeps the one added above
    errors.add(
        ~missing & (is_bool | np.isinf(numeric)),
        "timestamp",
        "not a date-time (ISO 8601) or Unix time",
    )
    valid = ~missing & ~is_bool & ~np.isinf(numeric) & ~unparsed
    errors.add(valid & (ts_us < _MIN_TS_US), "timestamp", "before 1995-01-01")
    future = valid & (ts_us > now_us + int(max_future_s * 1_000_000))
    reasons = np.full(len(col), "", dtype=object)
    reasons[future] = [future_reason(x, now_us, max_future_s) for x in numeric[future]]
    errors.add(future, "timestamp", reasons)
    return ts_us


def parse_context(col: np.ndarray, errors: Errors, max_bytes: int) -> np.ndarray:
    out = np.full(len(col), None, dtype=object)
    reasons = np.full(len(col), "", dtype=object)
    for row, val in enumerate(col):
        if val is not None:  # the usual event has none: no call for it
            out[row], reasons[row] = read_context(val, max_bytes)
    bad = reasons != ""
    errors.add(bad, "context", reasons)
    return out


def read_context(val: Any, max_bytes: int) -> tuple[str | None, str]:
    """One event's context as compact JSON text (None when absent), and why it is refused ("" when
    it is not): the rule for one value, shared by the column check and the per-record one
    (``validate_small``)."""
    if val is None or (isinstance(val, float) and math.isnan(val)) or val == "":
        return None, ""
    try:
        obj = json.loads(val) if isinstance(val, str) else val
    except json.JSONDecodeError:
        return None, "not a JSON object"
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        return None, "must be an object with string keys"
    if not all(v is None or isinstance(v, str | int | float | bool) for v in obj.values()):
        return None, "values must be strings, numbers, booleans or null"
    if any_surrogate([*obj, *(v for v in obj.values() if isinstance(v, str))]):
        return None, UNENCODABLE
    text = (
        json.dumps(obj, separators=(",", ":"), sort_keys=True, allow_nan=False)
        if all(not isinstance(v, float) or math.isfinite(v) for v in obj.values())
        else None
    )
    if text is None:
        return None, "values must be finite"
    if len(text.encode()) > max_bytes:
        return None, f"larger than {max_bytes} bytes"
    return text, ""
