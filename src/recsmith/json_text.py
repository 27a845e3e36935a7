"""The one strict JSON decoder of every door that reads JSON text (HTTP bodies, JSONL imports).

Python's ``json.loads`` is lenient where a store must not be: it reads ``NaN``, ``Infinity`` and
``-Infinity`` (not JSON; no other reader of the same bytes would agree), keeps the last value of
a repeated key silently (``{"item_id": "a", "item_id": "b"}``: which was meant?), and raises
``RecursionError`` on deep nesting or a bare ``ValueError`` on an integer of more than 4300
digits, neither of which a JSONL import caught (it stopped with a traceback on one such line).
``decode`` turns all of these into ``ValueError`` with a reason, and marks each object that
repeated a key (``repeated_path`` finds the first) so a caller rejects just that record.

One decoder is built once: ``json.loads`` with options builds a new one per call, which doubled
the cost of a small record.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from typing import Any

REPEATED_KEY = "repeated key: a JSON object must name each key once (which value is meant?)"


class TooDeep(ValueError):
    """Nested deeper than the decoder's recursion allows: no record is."""


class RepeatedKeys(dict[str, Any]):
    """An object that named ``key`` more than once (its last value kept, as ``json`` does)."""

    key: str


_MAX_DIGITS = sys.get_int_max_str_digits()

#: Objects with a repeated key decoded so far, per thread: ``decode`` compares before and after,
#: so a record without one (nearly all) is never walked.
_repeats = threading.local()


def _build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = RepeatedKeys(obj)
    keys = [key for key, _ in pairs]
    marked.key = next(k for n, k in enumerate(keys) if k in keys[:n])
    _repeats.count = getattr(_repeats, "count", 0) + 1
    return marked


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_build)


def decode(text: str | bytes) -> tuple[Any, bool]:
    """The decoded text, and whether some object in it repeated a key (``repeated_path``).
    ``ValueError`` (``TooDeep``, or ``UnicodeDecodeError``, a ValueError too) saying why it is
    not strict JSON. Bytes are decoded as ``json.loads`` does (UTF-8, -16 or -32, by their start).
    """
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    before = getattr(_repeats, "count", 0)
    try:
        data = _DECODER.decode(text)
    except RecursionError:  # the decoder recurses per level of nesting
        raise TooDeep("nested too deeply to be a record") from None
    except ValueError as exc:
        if str(exc).startswith("Exceeds the limit"):  # Python's guard against slow int parsing
            raise ValueError(f"a number of more than {_MAX_DIGITS} digits") from None
        raise
    return data, getattr(_repeats, "count", 0) != before


def repeated_path(value: Any, prefix: str = "") -> str | None:
    """The path of the first repeated key inside ``value`` (``context.page``, ``items[2].id``),
    or None: only worth walking when ``decode`` said there is one."""
    if isinstance(value, RepeatedKeys):
        return prefix + value.key
    if isinstance(value, dict):
        children = ((f"{prefix}{key}.", child) for key, child in value.items())
    elif isinstance(value, list):
        children = ((f"{prefix.rstrip('.')}[{n}].", child) for n, child in enumerate(value))
    else:
        return None
    for child_prefix, child in children:
        found = repeated_path(child, child_prefix)
        if found is not None:
            return found
    return None


def finite_or_null(value: Any) -> Any:
    """``value`` with every float that is not finite (NaN, ±inf) replaced by ``None``, through
    dicts, lists and tuples: what the JSON this writes must hold. ``json.dumps`` writes such a
    float as ``NaN`` or ``Infinity``, which is not JSON (``jq``, ``JSON.parse`` and this module's
    own ``decode`` refuse it): ``recsmith evaluate --json`` wrote ``"diversity": NaN`` where
    every list held one item."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(item) for item in value]
    return value
