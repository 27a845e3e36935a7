"""Parsing and per-record bookkeeping shared by the ingest routes (events and items).

Bodies are parsed here rather than by FastAPI so that a malformed record becomes a rejection with
its index instead of failing the whole request, and so that JSON's non-standard NaN/Infinity are
refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from fastapi import HTTPException

from recsmith.events.schema import FieldError, IngestResult, Rejection
from recsmith.store.base import EventStore
from recsmith.surrogates import storable


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """The decoded body, or 422 naming why it is not (strict) JSON."""
    if not body.strip():
        raise HTTPException(422, "request body is empty")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise HTTPException(422, f"request body is not valid JSON: {exc}") from None
    except RecursionError:  # the decoder recurses per level of nesting
        raise HTTPException(422, "request body is nested too deeply to be a record") from None


def parse_array(body: bytes, max_batch: int) -> list[Any]:
    """A JSON array of at most ``max_batch`` records: 422 for anything else, 413 when too long."""
    data = parse_json(body)
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
        Rejection(
            i,
            (FieldError("record", f"must be a JSON object, not {_json_type(rec)}"),),
            {"record": storable(rec)},
        )
        for i, rec in enumerate(records)
        if not isinstance(rec, dict)
    ]
    store.add_dead_letters(not_objects, source)
    moved = [replace(r, index=positions[r.index]) for r in result.rejected]
    merged = sorted([*moved, *not_objects], key=lambda r: r.index)
    return IngestResult(result.accepted, result.duplicates, tuple(merged))
