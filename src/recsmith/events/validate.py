"""Validation at the door: every bad record gets its own errors, and nothing valid is lost with it.

Events are checked column by column on a DataFrame (vectorised masks), which keeps a million-row
import fast; the result is a canonical frame (``schema.EVENT_COLUMNS``) plus one ``Rejection`` per
bad record.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pydantic

from recsmith.config import EventSettings
from recsmith.events.columns import (
    Errors,
    absent_mask,
    check_strings,
    check_value_range,
    flag_by_value,
    parse_context,
    parse_timestamp,
    parse_value,
    payload,
    settle_unencodable,
)
from recsmith.events.records import records_frame
from recsmith.events.schema import (
    EVENT_COLUMNS,
    EVENT_INPUT_FIELDS,
    FieldError,
    Item,
    Rejection,
    User,
)
from recsmith.gc_pause import paused_gc
from recsmith.surrogates import UNENCODABLE, any_surrogate, readable

M = TypeVar("M", bound=pydantic.BaseModel)
_ID_FIELDS = ("event_id", "user_id", "session_id", "item_id")


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
    raw = records if isinstance(records, pd.DataFrame) else records_frame(list(records))
    raw = raw.reset_index(drop=True)
    n = len(raw)
    errors = Errors(n)
    col = {
        name: settle_unencodable(raw[name], name, errors)
        if name in raw
        else pd.Series([None] * n, dtype=object)
        for name in sorted(EVENT_INPUT_FIELDS)  # sorted: errors in the same order every run
    }
    for name in raw.columns:
        if name not in EVENT_INPUT_FIELDS:
            errors.add(raw[name].notna().to_numpy(), readable(str(name)), "unknown field")

    for name in _ID_FIELDS:
        check_strings(col[name], name, errors, settings.max_id_length, required=name == "item_id")
    # an empty user_id already has its error ("must not be empty"): only a missing one is named
    no_actor = col["user_id"].isna().to_numpy() & absent_mask(col["session_id"])
    errors.add(no_actor, "user_id", "required (or a session_id for an anonymous visitor)")

    event_type = col["event_type"]
    check_strings(event_type, "event_type", errors, settings.max_id_length, required=True)
    known = event_type.isin(list(settings.weights)).to_numpy()
    known_list = ", ".join(sorted(settings.weights))
    errors.add(
        ~absent_mask(event_type) & ~known, "event_type", f"unknown event type (known: {known_list})"
    )

    value = parse_value(col["value"], errors)
    needs_value = flag_by_value(
        event_type, {t: isinstance(w, str) for t, w in settings.weights.items()}
    )
    errors.add(
        needs_value & np.isnan(value) & absent_mask(col["value"]),
        "value",
        "required for this event type",
    )
    is_log = flag_by_value(event_type, {t: w == "log_value" for t, w in settings.weights.items()})
    negative_log = is_log & (value < 0)  # log(1 + value) needs value >= 0 whatever the range says
    errors.add(negative_log, "value", "must be >= 0 for this event type")
    # a value refused already (infinite, negative for a log) gets no second error for its range
    unranged = negative_log | np.isinf(value)
    check_value_range(event_type, np.where(unranged, np.nan, value), settings, errors)

    now_us = int((time.time() if now is None else now) * 1_000_000)
    ts = parse_timestamp(
        col["timestamp"], errors, now_us, settings.max_future_seconds, settings.naive_timestamps
    )
    context = parse_context(col["context"], errors, settings.max_context_bytes)

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
    with paused_gc():  # a catalogue is one burst of long-lived objects (see recsmith.gc_pause)
        for i, rec in enumerate(records):
            try:
                fields = _readable_keys(dict(rec))
                good.append(model.model_validate(fields))
            except pydantic.ValidationError as exc:
                bad.append(Rejection(offset + i, _field_errors(exc), payload(fields)))
            except (TypeError, ValueError):  # not a mapping (ValueError: a str or a list)
                bad.append(Rejection(offset + i, (FieldError("record", "must be an object"),), {}))
    return good, bad


def _readable_keys(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with keys UTF-8 cannot encode escaped: such a key is never a known field, and
    pydantic's own error for it would name no field at all."""
    if not any_surrogate(k for k in record if isinstance(k, str)):
        return record
    return {readable(k) if isinstance(k, str) else k: v for k, v in record.items()}


#: What a property value may be (``schema.Scalar``), said once instead of once per union member.
_SCALAR_REASON = "must be a string, number, boolean or null (not a list or an object)"


def _field_errors(exc: pydantic.ValidationError) -> tuple[FieldError, ...]:
    """One error per field and reason. pydantic reports a value that fits no member of the
    ``properties`` union once per member (``properties.a.str``, ``….float``, ``….int``, ``….bool``);
    those become a single ``properties.a`` error that says what a property value may be."""
    out: dict[tuple[str, str], None] = {}
    for err in exc.errors():
        loc = tuple(readable(str(p)) for p in err["loc"])
        if len(loc) == 3 and loc[0] == "properties":
            out[(".".join(loc[:2]), _SCALAR_REASON)] = None
        else:
            # our own validators' reasons, without pydantic's "Value error, " in front; pydantic's
            # own check of a string's length meets a surrogate first, and says it in its words
            reason = (
                UNENCODABLE
                if err["type"] == "string_unicode"
                else err["msg"].removeprefix("Value error, ")
            )
            out[(".".join(loc) or "record", reason)] = None
    return tuple(FieldError(field, reason) for field, reason in out)
