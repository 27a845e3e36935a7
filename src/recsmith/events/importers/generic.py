"""Formats ``events`` and ``items``: a user's own CSV, JSONL or Parquet file (``.gz`` for text).

Events: columns ``user_id, item_id, timestamp`` and optionally ``event_type, value, session_id,
event_id, context``. Without an ``event_type`` column every row is a ``rating`` when there is a
``value`` column not blank in every row (the common "user,item,rating,timestamp" export) and a
``view`` otherwise; an ``event_type`` column blank in every row types each row so: a ``rating``
where it has a value, a ``view`` otherwise (a blank type beside typed rows is refused).

Items: ``item_id`` and optionally ``categories, tags, text, available, created_at``; any other
column becomes a property. In text files categories and tags are ``|``-separated lists.

Users (profiles): ``user_id`` and any other column as a property (age, gender, plan…), or a
``properties`` object in JSONL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsmith.errors import ValidationError
from recsmith.events.columns import empty_mask
from recsmith.events.importers._common import ImportSource, ItemRecord, RawChunk
from recsmith.events.importers.tabular import Record, Table, read_table
from recsmith.events.schema import EVENT_INPUT_FIELDS

_EVENT_IDS = ("user_id", "item_id", "session_id", "event_id", "recommendation_id")
_ITEM_FIELDS = frozenset({"item_id", "categories", "tags", "text", "available", "created_at"})
_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})
# Canonical numerals only: "007" or "1e5x" stay text, so codes with leading zeros are not mangled.
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?")


def default_event_type(has_value: bool) -> str:
    """A file with values but no types is a ratings export; one with neither is a click/view log."""
    return "rating" if has_value else "view"


def _check_event_columns(columns: list[str], name: str) -> None:
    """Refuse a header the validator would reject in every row: one error, not one per row."""
    unknown = [c for c in columns if c not in EVENT_INPUT_FIELDS]
    if unknown:
        raise ValidationError(
            "columns",
            f"{name}: unknown column(s) {', '.join(unknown)}; "
            f"expected some of {', '.join(sorted(EVENT_INPUT_FIELDS))}",
        )
    missing = [c for c in ("item_id", "timestamp") if c not in columns]
    if "user_id" not in columns and "session_id" not in columns:
        missing.append("user_id (or session_id)")
    if missing:
        raise ValidationError("columns", f"{name}: missing column(s) {', '.join(missing)}")


def read_events(path: Path, chunk_rows: int = 100_000) -> ImportSource:
    """Events from a CSV/JSONL/Parquet file; JSONL records may each omit ``event_type`` (a
    record then is a rating where its ``value`` is not blank, else a view)."""

    def per_record(record: Record) -> Record:
        if "event_type" not in record:
            value = record.get("value")
            blank = value is None or (isinstance(value, str) and not value.strip())
            record["event_type"] = default_event_type(not blank)
        return record

    def table() -> Table:
        return read_table(path, chunk_rows, id_keys=_EVENT_IDS, prepare=per_record)

    def blank_throughout(column: str) -> bool:
        """Whether ``column`` holds nothing in any row of the whole file: read again, only
        where the first chunk's column is blank throughout (so rarely), and stopped at the
        first cell that holds something."""
        return all(
            column not in chunk.rows or bool(_blank(chunk.rows[column]).all())
            for chunk in table().chunks
        )

    first = table()
    if first.columns is not None:
        _check_event_columns(first.columns, path.name)
    return ImportSource(
        "events", events=_with_type(first, blank_throughout), total_events=first.total
    )


def _with_type(
    table: Table, blank_throughout: Callable[[str], bool]
) -> Iterator[RawChunk[pd.DataFrame]]:
    """Each chunk's rows typed as the whole file says, decided at its first chunk. Without an
    ``event_type`` column: ratings where the file has a ``value`` column, views otherwise — a
    ``value`` column blank in every row of the file counting as none. An ``event_type`` column
    blank in every row of the file: each row a rating where it has a value, else a view. An
    export writing every optional column, empty where it has nothing, is the same log as one
    that leaves them out (issue #15: its rows were all refused, ``event_type: required`` /
    ``value: required``). Where any row carries a type, a blank one is refused as before: beside
    dwell seconds or prices its value is no rating (a 4 would become 4 stars nobody gave)."""
    typed = table.columns is None or "event_type" in table.columns
    valued = table.columns is not None and "value" in table.columns
    fill: bool | None = None  # the column blank in the whole file: decided at the first chunk
    for chunk in table.chunks:
        if not typed:
            if fill is None:
                fill = valued and bool(_blank(chunk.rows["value"]).all())
                fill = fill and blank_throughout("value")
            chunk.rows["event_type"] = default_event_type(valued and not fill)
        elif "event_type" in chunk.rows:
            blank = _blank(chunk.rows["event_type"])
            if fill is None:
                fill = bool(blank.all()) and blank_throughout("event_type")
            if fill:
                rows = chunk.rows
                has_value = ~_blank(rows["value"]) if "value" in rows else np.zeros(len(rows), bool)
                types = np.where(has_value, default_event_type(True), default_event_type(False))
                chunk.rows["event_type"] = types.astype(object)
        yield chunk


def _blank(column: pd.Series) -> np.ndarray:
    """Which cells hold nothing: null, empty or whitespace (as the validator reads a value)."""
    return empty_mask(column.to_numpy(dtype=object))


# ---- items ------------------------------------------------------------------------------------


#: Columns only an event has; a catalogue file with one of them is most likely an events file.
_EVENT_ONLY_COLUMNS = frozenset({"user_id", "event_id", "event_type", "session_id"})


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split("|") if part.strip()]
    return value


def _flag(value: Any) -> Any:
    """Text and 0/1 flags as booleans; anything else is left for the Item model to refuse."""
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value


def _scalar(text: str) -> str | int | float:
    """A CSV cell as a number when it is written as one, so numeric properties stay numeric."""
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else text
    return text


def _as_is(value: Any) -> Any:
    return value


#: How each known item field is read from a file cell; every other column is a property.
_ITEM_READERS: dict[str, Callable[[Any], Any]] = {
    "categories": _split,
    "tags": _split,
    "available": _flag,
    **{name: _as_is for name in _ITEM_FIELDS - {"categories", "tags", "available"}},
}


def _record(
    row: Record, fields: dict[str, Callable[[Any], Any]], *, from_text: bool
) -> dict[str, Any]:
    """One file row as a record: ``fields`` read by their readers, a ``properties`` object
    merged, every other column a property (a number where a text cell is written as one)."""
    record: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, val in row.items():
        if val is None or (isinstance(val, float) and math.isnan(val)):
            continue
        if key in fields:
            record[key] = fields[key](val)
        elif key == "properties" and isinstance(val, dict):
            props.update(val)
        else:
            props[key] = _scalar(val) if from_text and isinstance(val, str) else val
    if props:
        record["properties"] = props
    return record


def item_record(row: Record, *, from_text: bool) -> ItemRecord:
    """One file row as an Item-shaped dict: known fields mapped, every other column a property."""
    return _record(row, _ITEM_READERS, from_text=from_text)


def read_items(path: Path, chunk_rows: int = 100_000) -> ImportSource:
    """Catalog records from a CSV/JSONL/Parquet file."""
    table = _record_table(path, chunk_rows, "item_id", _EVENT_ONLY_COLUMNS)
    return ImportSource("items", items=_records(table, item_record), total_events=0)


def _record_table(path: Path, chunk_rows: int, key: str, refused: frozenset[str]) -> Table:
    """A file of records keyed by ``key`` (items, profiles) whose other columns become properties:
    so a file with one of the ``refused`` columns, most likely an events file, is refused rather
    than silently replacing every record it names with a record of one of its events."""
    table = read_table(path, chunk_rows, id_keys=(key,))
    if table.columns is not None and key not in table.columns:
        raise ValidationError("columns", f"{path.name}: missing column {key}")
    events_only = sorted(set(table.columns or ()) & refused)
    if events_only:
        raise ValidationError(
            "columns",
            f"{path.name}: has event columns ({', '.join(events_only)}): is it an events file? "
            "Import it with --format events (or rename those columns to keep them as properties)",
        )
    return table


def _records(
    table: Table, make: Callable[..., dict[str, Any]]
) -> Iterator[RawChunk[list[dict[str, Any]]]]:
    """The table's rows as records (``make(row, from_text=…)``), chunk by chunk."""
    from_text = table.kind == "csv"
    for chunk in table.chunks:
        rows = chunk.rows.to_dict(orient="records")
        records = [make(row, from_text=from_text) for row in rows]
        yield RawChunk(records, chunk.offset, chunk.source, chunk.rejections)


# ---- users ------------------------------------------------------------------------------------

#: Columns only an event has; a profile file with one of them is most likely an events file.
_NOT_PROFILE_COLUMNS = frozenset({"item_id", "event_id", "event_type", "session_id", "timestamp"})


def user_record(row: Record, *, from_text: bool) -> dict[str, Any]:
    """One file row as a User-shaped dict: ``user_id``, every other column a property."""
    return _record(row, {"user_id": _as_is}, from_text=from_text)


def read_users(path: Path, chunk_rows: int = 100_000) -> ImportSource:
    """User profiles from a CSV/JSONL/Parquet file."""
    table = _record_table(path, chunk_rows, "user_id", _NOT_PROFILE_COLUMNS)
    return ImportSource("users", users=_records(table, user_record), total_events=0)
