"""Parsing and per-record bookkeeping shared by the ingest routes (events and items).

Bodies are parsed here rather than by FastAPI so that a malformed record becomes a rejection with
its index instead of failing the whole request, and so that JSON's non-standard NaN/Infinity are
refused. A key repeated within one object (``{"item_id": "a", "item_id": "b"}``) is refused too:
the standard leaves its meaning open and Python's decoder would silently keep the last value, so
what was stored could differ from what another reader of the same bytes saw. Such a record is
rejected at its index naming the key; its neighbours are kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fastapi import HTTPException

from recsmith.events.schema import FieldError, IngestResult, Rejection
from recsmith.json_text import REPEATED_KEY, TooDeep, decode, repeated_path
from recsmith.store.base import EventStore
from recsmith.surrogates import storable


@dataclass(frozen=True, slots=True)
class AmbiguousRecord:
    """A record in which some object repeats a key, standing in for it in a parsed batch so that
    ``ingest_records`` rejects it at its index (it is not a dict, so no ingest path takes it)."""

    record: dict[str, Any]
    field: str  # the repeated key, as a path from the record: "context.page"


def _parse(body: bytes) -> tuple[Any, bool]:
    if not body.strip():
        raise HTTPException(422, "request body is empty")
    try:
        return decode(body)
    except TooDeep as exc:
        raise HTTPException(422, f"request body is {exc}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HTTPException(422, f"request body is not valid JSON: {exc}") from None


def parse_json(body: bytes) -> Any:
    """The decoded body, or 422 naming why it is not (strict) JSON or which key it repeats."""
    data, repeated = _parse(body)
    field = repeated_path(data) if repeated else None
    if field is not None:
        raise HTTPException(422, [{"field": field, "reason": REPEATED_KEY}])
    return data


def parse_record(body: bytes) -> Any:
    """One record sent on its own (a stream message's body), as ``parse_array`` gives each of its
    elements: the decoded value, or an ``AmbiguousRecord`` where it repeats a key. Raises
    ``ValueError`` naming why the body is not (strict) JSON."""
    data, repeated = decode(body)  # TooDeep, a ValueError, when nested too deeply
    field = repeated_path(data) if repeated else None
    return data if field is None else AmbiguousRecord(data, field)


def parse_array(body: bytes, max_batch: int) -> list[Any]:
    """A JSON array of at most ``max_batch`` records: 422 for anything else, 413 when too long.

    A record that repeats a key comes back as an ``AmbiguousRecord`` at its index.
    """
    data, repeated = _parse(body)
    if not isinstance(data, list):
        raise HTTPException(
            422, f"request body must be a JSON array of records, not {_json_type(data)}"
        )
    if len(data) > max_batch:
        raise HTTPException(
            413,
            f"{len(data)} records in one request; at most {max_batch} "
            "(serving.max_batch): split the batch",
        )
    if repeated:
        for n, record in enumerate(data):
            field = repeated_path(record)
            if field is not None:
                data[n] = AmbiguousRecord(record, field)
    return data


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def ingest_records(
    store: EventStore,
    records: Sequence[Any],
    ingest: Callable[[list[Mapping[str, Any]]], IngestResult],
    *,
    source: str,
) -> IngestResult:
    """Run ``ingest`` on the records that are JSON objects; the others are rejected at their index.

    ``ingest`` sees only objects, so its rejection indices are positions among them; they are mapped
    back to positions in the request here. In that rare mixed case its dead letters keep the inner
    positions, because ``ingest_events`` takes an offset but no position map.
    """
    positions = [i for i, rec in enumerate(records) if isinstance(rec, dict)]
    objects: list[Mapping[str, Any]] = [records[i] for i in positions]
    result = ingest(objects) if objects else IngestResult(0, 0)
    if len(objects) == len(records):
        return result
    not_objects = [
        record_rejection(i, rec) for i, rec in enumerate(records) if not isinstance(rec, dict)
    ]
    store.add_dead_letters(not_objects, source)
    moved = [replace(r, index=positions[r.index]) for r in result.rejected]
    merged = sorted([*moved, *not_objects], key=lambda r: r.index)
    return replace(result, rejected=tuple(merged))


def record_rejection(index: int, record: Any) -> Rejection:
    """The rejection of a record no ingest path takes: a repeated key, or not an object."""
    if isinstance(record, AmbiguousRecord):
        return Rejection(index, (FieldError(record.field, REPEATED_KEY),), storable(record.record))
    return Rejection(
        index,
        (FieldError("record", f"must be a JSON object, not {_json_type(record)}"),),
        {"record": storable(record)},
    )
