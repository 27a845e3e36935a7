"""Parsing and per-record bookkeeping shared by the ingest routes (events and items).

Bodies are parsed here rather than by FastAPI so that a malformed record becomes a rejection with
its index instead of failing the whole request, and so that JSON's non-standard NaN/Infinity are
refused. A key repeated within one object (``{"item_id": "a", "item_id": "b"}``) is refused too:
the standard leaves its meaning open and Python's decoder would silently keep the last value, so
what was stored could differ from what another reader of the same bytes saw. Such a record is
rejected at its index naming the key; its neighbours are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fastapi import HTTPException

from recsmith.events.schema import FieldError, IngestResult, Rejection
from recsmith.store.base import EventStore
from recsmith.surrogates import storable

REPEATED_KEY = "repeated key: a JSON object must name each key once (which value is meant?)"


@dataclass(frozen=True, slots=True)
class AmbiguousRecord:
    """A record in which some object repeats a key, standing in for it in a parsed batch so that
    ``ingest_records`` rejects it at its index (it is not a dict, so no ingest path takes it)."""

    record: dict[str, Any]
    field: str  # the repeated key, as a path from the record: "context.page"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode(body: bytes) -> tuple[Any, dict[int, str]]:
    """The decoded body, and the objects in it that repeated a key: id(object) -> that key.

    The decoder builds each object from its key/value pairs; a dict shorter than its pairs lost
    one. The hook keeps the objects themselves alive, so their ids stay unique until the caller
    has looked them up.
    """
    repeated: dict[int, str] = {}
    keep: list[dict[str, Any]] = []

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) != len(pairs):
            keys = [key for key, _ in pairs]
            repeated[id(obj)] = next(k for n, k in enumerate(keys) if k in keys[:n])
            keep.append(obj)
        return obj

    data = json.loads(body, parse_constant=_refuse_constant, object_pairs_hook=build)
    return data, repeated


def _repeated_path(value: Any, repeated: dict[int, str], prefix: str = "") -> str | None:
    """The path of the first repeated key inside ``value`` (rare: only walked when one exists)."""
    if isinstance(value, dict):
        if id(value) in repeated:
            return prefix + repeated[id(value)]
        children = ((f"{prefix}{key}.", child) for key, child in value.items())
    elif isinstance(value, list):
        children = ((f"{prefix.rstrip('.')}[{n}].", child) for n, child in enumerate(value))
    else:
        return None
    for child_prefix, child in children:
        found = _repeated_path(child, repeated, child_prefix)
        if found is not None:
            return found
    return None


def _parse(body: bytes) -> tuple[Any, dict[int, str]]:
    if not body.strip():
        raise HTTPException(422, "request body is empty")
    try:
        return _decode(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise HTTPException(422, f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # the decoder recurses per level of nesting
        raise HTTPException(422, "request body is nested too deeply to be a record") from None


def parse_json(body: bytes) -> Any:
    """The decoded body, or 422 naming why it is not (strict) JSON or which key it repeats."""
    data, repeated = _parse(body)
    field = _repeated_path(data, repeated) if repeated else None
    if field is not None:
        raise HTTPException(422, [{"field": field, "reason": REPEATED_KEY}])
    return data


def parse_record(body: bytes) -> Any:
    """One record sent on its own (a stream message's body), as ``parse_array`` gives each of its
    elements: the decoded value, or an ``AmbiguousRecord`` where it repeats a key. Raises
    ``ValueError`` naming why the body is not (strict) JSON."""
    try:
        data, repeated = _decode(body)
    except RecursionError:
        raise ValueError("nested too deeply to be a record") from None
    field = _repeated_path(data, repeated) if repeated else None
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
            field = _repeated_path(record, repeated)
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
