"""Context features of the moment a query stands for: hour, day of week, device, declared keys.

One function, ``context_columns``, turns (timestamp, context dict) per query into columns, for
training and serving alike. A training query stands for the user's first event in its label
window (``first_events``): its time and the context stored with it. A served query stands for
now: the clock's time, and the request's context. Before this, training built every query with an
empty context and the reference time's hour, so ``hour`` and ``device`` were constants the
ranker could learn nothing from (#15). What is unknown is NaN (no time, no device), never a
constant standing in for it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recsmith.features.interactions import MICROS_PER_DAY, Interactions
from recsmith.features.properties import feature_label

#: Device codes; a device not listed is 0 ("other"), a context without one NaN.
DEVICES = {"mobile": 1, "desktop": 2, "tablet": 3, "app": 4}
MICROS_PER_HOUR = 3_600_000_000
#: 1970-01-01 was a Thursday: day 0 of the epoch is weekday 3 (Monday = 0).
_EPOCH_WEEKDAY = 3
#: Text values of declared context keys become a stable hash below float32's exact integers.
_HASH_SPACE = 1 << 24


def context_names(keys: Sequence[str]) -> list[str]:
    """The columns ``context_columns`` returns, in order."""
    return ["hour", "day_of_week", "device", *(f"context_{feature_label(k)}" for k in keys)]


def context_columns(
    moments: np.ndarray | None, contexts: Sequence[Mapping[str, Any]], keys: Sequence[str] = ()
) -> np.ndarray:
    """float32 [n, 3 + len(keys)]: the UTC hour (the context's ``hour`` when it gives a valid
    one, else the moment's), the UTC day of week (Monday 0) of ``moments`` (µs; negative or None
    = unknown), the device code, then each declared key's value (a number as is, true/false as
    1/0, text as a stable hash; NaN when absent)."""
    n = len(contexts)
    out = np.full((n, 3 + len(keys)), np.nan, np.float32)
    if moments is not None and n:
        ts = np.asarray(moments, np.int64)
        known = ts >= 0
        out[known, 0] = (ts[known] // MICROS_PER_HOUR) % 24
        out[known, 1] = (ts[known] // MICROS_PER_DAY + _EPOCH_WEEKDAY) % 7
    for i, ctx in enumerate(contexts):  # per query, not per candidate: small
        if not ctx:
            continue
        hour = ctx.get("hour")
        if _number(hour) is not None and 0 <= float(hour) < 24:
            out[i, 0] = int(float(hour))
        if (device := ctx.get("device")) is not None:
            out[i, 2] = DEVICES.get(str(device).lower(), 0)
        for j, key in enumerate(keys):
            out[i, 3 + j] = _encoded(ctx.get(key))
    return out


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _encoded(value: object) -> float:
    if value is None:
        return np.nan
    if isinstance(value, bool):
        return float(value)
    if (number := _number(value)) is not None:
        return number
    return float(zlib.crc32(str(value).encode("utf-8", "backslashreplace")) % _HASH_SPACE)


def first_events(data: Interactions, mask: np.ndarray, users: np.ndarray) -> np.ndarray:
    """Index (into ``data``'s events) of each of ``users``' earliest event among those ``mask``
    selects; -1 for a user without one."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return np.full(len(users), -1, np.int64)
    idx = idx[np.lexsort((data.event_ts[idx], data.event_users[idx]))]
    owner = data.event_users[idx]
    at = np.minimum(np.searchsorted(owner, users), len(idx) - 1)
    return np.where(owner[at] == users, idx[at], -1)


def moments_of(data: Interactions, events: np.ndarray) -> tuple[np.ndarray, tuple[dict, ...]]:
    """The time (µs, -1 unknown) and stored context of each event index in ``events`` (-1: no
    event): what a training or validation query stands for."""
    ts = np.full(len(events), -1, np.int64)
    ts[events >= 0] = data.event_ts[events[events >= 0]]
    stored = data.event_context
    contexts = tuple(
        parse_context(stored[e]) if e >= 0 and stored is not None else {} for e in events.tolist()
    )
    return ts, contexts


def parse_context(raw: object) -> dict[str, Any]:
    """A stored context (compact JSON text, as ``events.validate`` keeps it) as a dict; {} for
    none or anything that is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
