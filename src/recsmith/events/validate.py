"""Validation at the door: every bad record gets its own errors, and nothing valid is lost with it.

Events are checked column by column on a DataFrame (vectorised masks), which keeps a million-row
import fast; the result is a canonical frame (``schema.EVENT_COLUMNS``) plus one ``Rejection`` per
bad record.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pydantic

from recsmith.config import EventSettings
from recsmith.events.schema import (
    EVENT_COLUMNS,
    EVENT_INPUT_FIELDS,
    MIN_TIMESTAMP,
    FieldError,
    Item,
    Rejection,
    User,
)

_MIN_TS_US = int(MIN_TIMESTAMP.timestamp() * 1_000_000)
#: Numbers above this are read as milliseconds, not seconds (1e11 s is the year 5138).
_MS_THRESHOLD = 1e11
M = TypeVar("M", bound=pydantic.BaseModel)
_ID_FIELDS = ("event_id", "user_id", "session_id", "item_id")


def _missing(col: pd.Series) -> np.ndarray:
    """Absent: null, NaN or the empty string (how CSV files spell a missing field)."""
    return col.isna().to_numpy() | (col.astype(object) == "").to_numpy()


def _is_str(col: pd.Series) -> np.ndarray:
    """Which entries are str; string-typed columns (CSV reads) skip the per-element check."""
    if isinstance(col.dtype, pd.StringDtype):
        return col.notna().to_numpy()
    return col.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)


def _is_bool(col: pd.Series) -> np.ndarray:
    if isinstance(col.dtype, pd.StringDtype):
        return np.zeros(len(col), dtype=bool)
    return col.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)


def _lookup(col: pd.Series, table: Mapping[str, bool]) -> np.ndarray:
    """Vectorised per-row flag from a small table keyed by the column's value (False if absent).

    Non-strings are blanked first: a list or dict would make the hash lookup raise ``TypeError``.
    """
    keys = col.astype(object).where(_is_str(col), None)
    return keys.map(table).fillna(False).to_numpy(dtype=bool)


class _Errors:
    """Collects (row mask, field, reason) triples and turns them into per-record rejections."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.items: list[tuple[np.ndarray, str, str | np.ndarray]] = []

    def add(self, mask: np.ndarray, field: str, reason: str | np.ndarray) -> None:
        if mask.any():
            self.items.append((mask, field, reason))

    @property
    def bad(self) -> np.ndarray:
        out = np.zeros(self.n, dtype=bool)
        for mask, _, _ in self.items:
            out |= mask
        return out

    def rejections(self, raw: pd.DataFrame, offset: int) -> list[Rejection]:
        per_row: dict[int, list[FieldError]] = {}
        for mask, field, reason in self.items:
            for row in np.flatnonzero(mask):
                text = reason if isinstance(reason, str) else str(reason[row])
                per_row.setdefault(int(row), []).append(FieldError(field, text))
        return [
            Rejection(offset + row, tuple(errs), _payload(raw.iloc[row]))
            for row, errs in sorted(per_row.items())
        ]


def _payload(row: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in row.items():
        if val is None or (isinstance(val, float) and math.isnan(val)):
            continue
        if isinstance(val, np.generic):
            val = val.item()
        out[str(key)] = val if isinstance(val, str | int | float | bool | dict | list) else str(val)
    return out


def _check_strings(
    col: pd.Series, field: str, errors: _Errors, max_len: int, required: bool
) -> None:
    missing = col.isna().to_numpy()
    if required:
        errors.add(missing, field, "required")
    present = ~missing
    is_str = _is_str(col)
    errors.add(present & ~is_str, field, "must be a string (quote numeric ids)")
    text = col.where(is_str & present, "x").astype(str)
    errors.add(present & is_str & text.str.strip().eq("").to_numpy(), field, "must not be empty")
    errors.add(
        present & is_str & (text.str.len() > max_len).to_numpy(),
        field,
        f"longer than {max_len} characters",
    )
    errors.add(
        present & is_str & text.str.contains(r"[\x00-\x1f]", regex=True).to_numpy(),
        field,
        "contains control characters",
    )


def _huge_int_to_inf(v: Any) -> Any:
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**1023:
        return math.inf if v > 0 else -math.inf
    return v


def _to_float(col: pd.Series) -> np.ndarray:
    """Floats, NaN where not numeric. JSON allows integers beyond float range (``1e400`` written
    out); ``pd.to_numeric`` raises OverflowError on those, so they become +-inf instead."""
    try:
        numbers = pd.to_numeric(col, errors="coerce")
    except OverflowError:
        numbers = pd.to_numeric(col.astype(object).map(_huge_int_to_inf), errors="coerce")
    return numbers.to_numpy(dtype=np.float64, copy=True)


def _parse_value(col: pd.Series, errors: _Errors) -> np.ndarray:
    is_str = _is_str(col)
    blank = is_str & col.where(is_str, "x").astype(str).str.strip().eq("").to_numpy()
    missing = col.isna().to_numpy() | blank
    is_bool = _is_bool(col)
    numbers = _to_float(col.where(~is_bool))
    errors.add(~missing & (is_bool | np.isnan(numbers)), "value", "must be a number")
    errors.add(~missing & np.isinf(numbers), "value", "must be finite")
    numbers[missing] = np.nan
    return numbers


def _parse_timestamp(
    col: pd.Series, errors: _Errors, now_us: int, max_future_s: float
) -> np.ndarray:
    missing = _missing(col)
    errors.add(missing, "timestamp", "required")
    is_bool = _is_bool(col)
    numeric = _to_float(col.where(~is_bool))
    ts_us = np.zeros(len(col), dtype=np.int64)
    finite = np.isfinite(numeric)
    seconds = np.where(np.abs(numeric) > _MS_THRESHOLD, numeric / 1000.0, numeric)
    # clipped far outside the accepted range: absurd numbers fail the range checks, never wrap
    ts_us[finite] = np.round(np.clip(seconds[finite], -9e12, 9e12) * 1_000_000).astype(np.int64)
    text_rows = ~missing & ~finite & ~is_bool & ~np.isinf(numeric)
    unparsed = np.zeros(len(col), dtype=bool)
    if text_rows.any():
        parsed = pd.to_datetime(
            col[text_rows].astype(str), utc=True, errors="coerce", format="ISO8601"
        )
        ok = parsed.notna().to_numpy()
        idx = np.flatnonzero(text_rows)
        ts_us[idx[ok]] = parsed[ok].to_numpy(dtype="datetime64[us]").astype(np.int64)
        unparsed[idx[~ok]] = True
        errors.add(unparsed, "timestamp", "not a date-time (ISO 8601) or Unix time")
    errors.add(
        ~missing & (is_bool | np.isinf(numeric)),
        "timestamp",
        "not a date-time (ISO 8601) or Unix time",
    )
    valid = ~missing & ~is_bool & ~np.isinf(numeric) & ~unparsed
    errors.add(valid & (ts_us < _MIN_TS_US), "timestamp", "before 1995-01-01")
    errors.add(
        valid & (ts_us > now_us + int(max_future_s * 1_000_000)),
        "timestamp",
        f"more than {max_future_s / 86400:g} day(s) in the future",
    )
    return ts_us


def _parse_context(col: pd.Series, errors: _Errors, max_bytes: int) -> np.ndarray:
    out = np.full(len(col), None, dtype=object)
    reasons = np.full(len(col), "", dtype=object)
    for row, val in enumerate(col.to_numpy()):
        if val is None or (isinstance(val, float) and math.isnan(val)) or val == "":
            continue
        try:
            obj = json.loads(val) if isinstance(val, str) else val
        except json.JSONDecodeError:
            reasons[row] = "not a JSON object"
            continue
        if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
            reasons[row] = "must be an object with string keys"
            continue
        if not all(v is None or isinstance(v, str | int | float | bool) for v in obj.values()):
            reasons[row] = "values must be strings, numbers, booleans or null"
            continue
        text = (
            json.dumps(obj, separators=(",", ":"), sort_keys=True, allow_nan=False)
            if all(not isinstance(v, float) or math.isfinite(v) for v in obj.values())
            else None
        )
        if text is None:
            reasons[row] = "values must be finite"
        elif len(text.encode()) > max_bytes:
            reasons[row] = f"larger than {max_bytes} bytes"
        else:
            out[row] = text
    bad = reasons != ""
    errors.add(bad, "context", reasons)
    return out


def content_event_ids(frame: pd.DataFrame) -> np.ndarray:
    """Deterministic ids for events sent without one: the same content always gets the same id."""
    parts = zip(
        frame["user_id"].fillna("").to_numpy(),
        frame["session_id"].fillna("").to_numpy(),
        frame["item_id"].to_numpy(),
        frame["event_type"].to_numpy(),
        frame["value"].to_numpy(),
        frame["ts"].to_numpy(),
        strict=True,
    )
    sep = "\x1f"  # a control character: validated ids can never contain it
    return np.array(
        [
            hashlib.blake2b(
                sep.join((u, s, i, t, "" if math.isnan(v) else repr(float(v)), str(ts))).encode(),
                digest_size=16,
            ).hexdigest()
            for u, s, i, t, v, ts in parts
        ],
        dtype=object,
    )


def _records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record, even for ``{}`` (``from_records`` alone makes zero rows of ``[{}]``)."""
    rows = list(records)
    return pd.DataFrame.from_records(rows, index=pd.RangeIndex(len(rows)))


def validate_events(
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    now: float | None = None,
    offset: int = 0,
) -> tuple[pd.DataFrame, list[Rejection]]:
    """Split a batch into a canonical frame of valid events and a rejection for each bad record.

    ``offset`` is added to rejection indices, so chunked imports report positions in the whole file.
    """
    raw = records if isinstance(records, pd.DataFrame) else _records_frame(records)
    raw = raw.reset_index(drop=True)
    n = len(raw)
    errors = _Errors(n)
    col = {
        name: raw[name] if name in raw else pd.Series([None] * n, dtype=object)
        for name in EVENT_INPUT_FIELDS
    }
    for name in raw.columns:
        if name not in EVENT_INPUT_FIELDS:
            errors.add(raw[name].notna().to_numpy(), str(name), "unknown field")

    for name in _ID_FIELDS:
        _check_strings(col[name], name, errors, settings.max_id_length, required=name == "item_id")
    no_actor = _missing(col["user_id"]) & _missing(col["session_id"])
    errors.add(no_actor, "user_id", "required (or a session_id for an anonymous visitor)")

    event_type = col["event_type"]
    _check_strings(event_type, "event_type", errors, settings.max_id_length, required=True)
    known = event_type.isin(list(settings.weights)).to_numpy()
    known_list = ", ".join(sorted(settings.weights))
    errors.add(
        ~_missing(event_type) & ~known, "event_type", f"unknown event type (known: {known_list})"
    )

    value = _parse_value(col["value"], errors)
    needs_value = _lookup(event_type, {t: isinstance(w, str) for t, w in settings.weights.items()})
    errors.add(
        needs_value & np.isnan(value) & _missing(col["value"]),
        "value",
        "required for this event type",
    )
    is_log = _lookup(event_type, {t: w == "log_value" for t, w in settings.weights.items()})
    errors.add(is_log & (value < 0), "value", "must be >= 0 for this event type")

    now_us = int((time.time() if now is None else now) * 1_000_000)
    ts = _parse_timestamp(col["timestamp"], errors, now_us, settings.max_future_seconds)
    context = _parse_context(col["context"], errors, settings.max_context_bytes)

    bad = errors.bad
    good = ~bad

    def text(name: str) -> np.ndarray:
        values = col[name].to_numpy(dtype=object)[good]
        return np.where(pd.isna(values) | (values == ""), None, values).astype(object)

    frame = pd.DataFrame(
        {
            "event_id": text("event_id"),
            "user_id": text("user_id"),
            "session_id": text("session_id"),
            "item_id": col["item_id"].to_numpy(dtype=object)[good],
            "event_type": event_type.to_numpy(dtype=object)[good],
            "value": value[good],
            "ts": ts[good],
            "context": context[good],
        },
        columns=list(EVENT_COLUMNS),
    )
    no_id = frame["event_id"].isna().to_numpy()
    if no_id.any():
        frame.loc[no_id, "event_id"] = content_event_ids(frame[no_id])
    return frame, errors.rejections(raw, offset)


def validate_items(
    records: Iterable[Mapping[str, Any]], *, offset: int = 0
) -> tuple[list[Item], list[Rejection]]:
    """Validate catalog records one by one with pydantic; bad ones become rejections."""
    return _validate_models(Item, records, offset)


def validate_users(
    records: Iterable[Mapping[str, Any]], *, offset: int = 0
) -> tuple[list[User], list[Rejection]]:
    """Validate user profiles one by one with pydantic; bad ones become rejections."""
    return _validate_models(User, records, offset)


def _validate_models(
    model: type[M], records: Iterable[Mapping[str, Any]], offset: int
) -> tuple[list[M], list[Rejection]]:
    good: list[M] = []
    bad: list[Rejection] = []
    for i, rec in enumerate(records):
        try:
            good.append(model.model_validate(dict(rec)))
        except pydantic.ValidationError as exc:
            errs = tuple(
                FieldError(".".join(str(p) for p in err["loc"]) or "record", err["msg"])
                for err in exc.errors()
            )
            bad.append(Rejection(offset + i, errs, {k: v for k, v in dict(rec).items()}))
        except TypeError:
            bad.append(Rejection(offset + i, (FieldError("record", "must be an object"),), {}))
    return good, bad
