"""Validation at the door: every bad record gets its own errors, and nothing valid is lost with it.

Events are checked column by column (vectorised masks over object arrays, see ``columns``), which
keeps a million-row import fast and one event from a browser cheap; the result is a canonical frame
(``schema.EVENT_COLUMNS``) plus one ``Rejection`` per bad record.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
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
    float_texts,
    missing_mask,
    parse_context,
    parse_timestamp,
    parse_value,
    payload,
    refuse_text,
    settle_unencodable,
)
from recsmith.events.schema import (
    AT_THE_DOOR,
    EVENT_COLUMNS,
    EVENT_INPUT_FIELDS,
    FieldError,
    Item,
    Rejection,
    User,
)
from recsmith.gc_pause import paused_gc
from recsmith.surrogates import UNENCODABLE, any_surrogate, readable
from recsmith.validation_reasons import REQUIRED, unknown_among, unknown_field

M = TypeVar("M", bound=pydantic.BaseModel)
_ID_FIELDS = ("event_id", "user_id", "session_id", "item_id", "recommendation_id")
#: The longest list a position can point into (``serving.routers.recommend.MAX_K``, batch lists).
MAX_POSITION = 10_000
#: An event's fields in a stable order, listed when an unknown one is near none of them.
_KNOWN_FIELDS = tuple(sorted(EVENT_INPUT_FIELDS))


def unknown_event_field(name: object) -> str:
    """An event's unknown key worded as an item's or a body's (``validation_reasons``): with the
    field meant, ``unknown field (did you mean timestamp?)``, or the valid ones."""
    return unknown_among(readable(str(name)), _KNOWN_FIELDS)


def content_event_ids(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Deterministic ids for events sent without one: the same content always gets the same id.

    ``columns`` holds canonical columns (a frame, or the arrays it is built from). The id is the
    16-byte blake2b of user, session, item, type, value (``repr``; "" when absent) and time
    joined by ``\x1f`` (validated ids can never contain it). Stored ids depend on these exact
    bytes: a re-imported file deduplicates only if they never change. The texts are built by
    C-level ``map`` passes with one ``repr`` per distinct value; the hash is the one step per
    row left (its ~2 µs is most of the cost)."""

    def text(name: str) -> list[Any]:
        values = np.asarray(columns[name], dtype=object)
        return np.where(pd.isna(values), "", values).tolist()

    ts = np.asarray(columns["ts"], dtype=np.int64).tolist()
    texts = zip(
        text("user_id"),
        text("session_id"),
        np.asarray(columns["item_id"], dtype=object).tolist(),
        np.asarray(columns["event_type"], dtype=object).tolist(),
        float_texts(np.asarray(columns["value"], dtype=np.float64)),
        map(str, ts),
        strict=True,
    )
    digests = [
        hashlib.blake2b(line.encode(), digest_size=16).hexdigest()
        for line in map("\x1f".join, texts)
    ]
    return np.array(digests, dtype=object)


#: Why an event without a timestamp needs an event_id to be stamped: its content id
#: (``content_event_ids``) includes the time, so a retry stamped a second later would be stored as a
#: second event; an event_id keeps the retry a duplicate (its stored time stays the first one).
STAMP_RULE = (
    "required unless the event has an event_id (the server then uses the time received; "
    "without an event_id a retried event could not be told from a new one)"
)


def _input_columns(
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
) -> tuple[int, dict[Any, np.ndarray], Callable[[int], pd.Series | Mapping[str, Any]]]:
    """The batch as object arrays by field name, and how to get one row back as sent.

    Records (HTTP, the Python API) skip pandas altogether; a frame (imports) gives its columns.
    """
    if isinstance(records, pd.DataFrame):
        frame = records.reset_index(drop=True)
        columns = {name: frame[name].to_numpy(dtype=object) for name in frame.columns}
        return len(frame), columns, frame.iloc.__getitem__
    rows = list(records)
    names = dict.fromkeys(chain.from_iterable(rows))
    columns = {k: np.fromiter((r.get(k) for r in rows), object, len(rows)) for k in names}
    return len(rows), columns, rows.__getitem__


def validate_events(
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    now: float | None = None,
    offset: int = 0,
    typed_numbers: bool = False,
) -> tuple[pd.DataFrame, list[Rejection]]:
    """Split a batch into a canonical frame of valid events and a rejection for each bad record.

    ``offset`` is added to rejection indices, so chunked imports report positions in the whole file.
    Every event needs a timestamp (imports, the Python API); see ``validate_live_events``.
    ``typed_numbers``: the records are JSON that came live (a dead letter's, replayed), so a
    number sent as a string is refused as it was then (``NUMBER_FIELDS``).
    """
    frame, rejected, _ = _validate(
        records, settings, now, offset, stamp_missing=False, typed_numbers=typed_numbers
    )
    return frame, rejected


#: What a number sent as a JSON string is refused with, by field (``columns.refuse_text``).
NUMBER_FIELDS = {
    "value": "must be a number",
    "position": "must be a whole number (1 = first shown)",
}


def validate_live_events(
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    settings: EventSettings,
    *,
    now: float | None = None,
    offset: int = 0,
) -> tuple[pd.DataFrame, list[Rejection], np.ndarray]:
    """``validate_events`` for events arriving live (``POST /v1/events``): an event without a
    timestamp but with an event_id gets the time received, ``now`` (``STAMP_RULE``). A browser or
    an app rarely has a clock worth trusting. Also returns which valid rows were stamped.
    Their numbers are JSON's: one sent as a string is refused (``NUMBER_FIELDS``)."""
    return _validate(records, settings, now, offset, stamp_missing=True, typed_numbers=True)


def _validate(
    records: pd.DataFrame | Sequence[Mapping[str, Any]],
    settings: EventSettings,
    now: float | None,
    offset: int,
    *,
    stamp_missing: bool,
    typed_numbers: bool = False,
) -> tuple[pd.DataFrame, list[Rejection], np.ndarray]:
    n, raw, record = _input_columns(records)
    errors = Errors(n)
    nothing = np.full(n, None, dtype=object)
    col = {
        name: settle_unencodable(raw[name], name, errors) if name in raw else nothing
        for name in sorted(EVENT_INPUT_FIELDS)  # sorted: errors in the same order every run
    }
    for name, values in raw.items():
        if name not in EVENT_INPUT_FIELDS:
            errors.add(~missing_mask(values), readable(str(name)), unknown_event_field(name))

    for name in _ID_FIELDS:
        check_strings(col[name], name, errors, settings.max_id_length, required=name == "item_id")
    # an empty user_id already has its error ("must not be empty"): only a missing one is named
    no_actor = missing_mask(col["user_id"]) & absent_mask(col["session_id"])
    errors.add(no_actor, "user_id", "required (or a session_id for an anonymous visitor)")

    event_type = col["event_type"]
    check_strings(event_type, "event_type", errors, settings.max_id_length, required=True)
    known = flag_by_value(event_type, dict.fromkeys(settings.weights, True))
    known_list = ", ".join(sorted(settings.weights))
    errors.add(
        ~absent_mask(event_type) & ~known, "event_type", f"unknown event type (known: {known_list})"
    )

    numbers = {
        name: refuse_text(col[name], name, reason, errors) if typed_numbers else col[name]
        for name, reason in NUMBER_FIELDS.items()
    }
    value = parse_value(numbers["value"], errors)
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

    received = time.time() if now is None else now
    timestamps, missing_reason = col["timestamp"], "required"
    stamped = np.zeros(n, dtype=bool)
    if stamp_missing:
        stamped = absent_mask(timestamps) & ~absent_mask(col["event_id"])
        timestamps = np.where(stamped, received, timestamps)
        missing_reason = STAMP_RULE
    ts = parse_timestamp(
        timestamps,
        errors,
        int(received * 1_000_000),
        settings.max_future_seconds,
        settings.naive_timestamps,
        missing_reason,
    )
    context = parse_context(col["context"], errors, settings.max_context_bytes)
    position = _parse_position(numbers["position"], errors)
    errors.add(
        ~absent_mask(col["position"]) & missing_mask(col["recommendation_id"]),
        "position",
        "needs a recommendation_id (the list the position is in)",
    )

    good = ~errors.bad

    def text(name: str) -> np.ndarray:
        values = col[name][good]
        return np.where(absent_mask(values), None, values)

    canonical = {
        "event_id": text("event_id"),
        "user_id": text("user_id"),
        "session_id": text("session_id"),
        "item_id": col["item_id"][good],
        "event_type": event_type[good],
        "value": value[good],
        "ts": ts[good],
        "context": context[good],
        "recommendation_id": text("recommendation_id"),
        "position": position[good],
    }
    no_id = missing_mask(canonical["event_id"])
    if no_id.any():
        canonical["event_id"][no_id] = content_event_ids(
            {name: values[no_id] for name, values in canonical.items()}
        )
    frame = pd.DataFrame(canonical, columns=list(EVENT_COLUMNS), copy=False)
    return frame, errors.rejections(record, offset), stamped[good]


def _parse_position(col: np.ndarray, errors: Errors) -> np.ndarray:
    """1-based positions as ints (None where absent): an int, or its canonical text (a CSV
    import), from 1 to ``MAX_POSITION``."""
    absent = absent_mask(col)
    if absent.all():  # the usual batch (and every import without the column): nothing to read
        return np.full(len(col), None, dtype=object)
    text = np.array([isinstance(v, str) and v.isascii() and v.isdigit() for v in col], dtype=bool)
    ints = np.array(
        [isinstance(v, int | np.integer) and not isinstance(v, bool) for v in col], dtype=bool
    )
    whole = np.array(  # a Parquet column with a gap reads as floats
        [isinstance(v, float | np.floating) and math.isfinite(v) and v.is_integer() for v in col],
        dtype=bool,
    )
    readable_ = ints | text | whole
    errors.add(~absent & ~readable_, "position", "must be a whole number (1 = first shown)")
    out = np.full(len(col), None, dtype=object)
    numbers = [int(v) for v in col[readable_]]
    out[readable_] = numbers
    in_range = np.array([v is None or 1 <= v <= MAX_POSITION for v in out], dtype=bool)
    errors.add(readable_ & ~in_range, "position", f"must be from 1 to {MAX_POSITION}")
    out[~in_range] = None
    return out


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
                good.append(model.model_validate(fields, context=AT_THE_DOOR))
            except pydantic.ValidationError as exc:
                bad.append(Rejection(offset + i, _field_errors(exc, model), payload(fields)))
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


def _field_errors(
    exc: pydantic.ValidationError, model: type[pydantic.BaseModel]
) -> tuple[FieldError, ...]:
    """One error per field and reason. pydantic reports a value that fits no member of the
    ``properties`` union once per member (``properties.a.str``, ``….float``, ``….int``, ``….bool``);
    those become a single ``properties.a`` error that says what a property value may be."""
    out: dict[tuple[str, str], None] = {}
    for err in exc.errors():
        loc = tuple(readable(str(p)) for p in err["loc"])
        if len(loc) == 3 and loc[0] == "properties":
            out[(".".join(loc[:2]), _SCALAR_REASON)] = None
        else:
            out[(".".join(loc) or "record", _reason(err, loc, model))] = None
    return tuple(FieldError(field, reason) for field, reason in out)


def _reason(err: Any, loc: tuple[str, ...], model: type[pydantic.BaseModel]) -> str:
    """One error's reason worded as an event's would be: a missing field "required" (not
    "Field required"), an unknown one "unknown field" with the nearest known field; our own
    validators' reasons without pydantic's "Value error, " in front. pydantic's own check of a
    string's length meets a surrogate first, and says it in its words."""
    kind = err["type"]
    if kind == "string_unicode":
        return UNENCODABLE
    if kind == "missing":
        return REQUIRED
    if kind == "extra_forbidden":
        return unknown_field(model, loc)
    return str(err["msg"]).removeprefix("Value error, ")
