"""Lone UTF-16 surrogates: text Python holds but UTF-8 cannot encode.

``json.loads`` turns the escape ``"\\ud800"`` into such a character. pyarrow (behind pandas'
strings), SQLite, PostgreSQL and every JSON response need UTF-8, so one such character anywhere in
a record used to fail the whole batch or, stored, every later training run. Records are checked
for them at the door, and what must still be kept or shown (a dead letter's payload, an unknown
field's name) is escaped by ``readable``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from itertools import repeat
from typing import Any

import numpy as np

#: The surrogate code points as a regex character-class range (for composing id rules).
SURROGATES = "\ud800-\udfff"
_SURROGATE = re.compile(f"[{SURROGATES}]")

#: The reason a field is refused for such text.
UNENCODABLE = "not valid Unicode (lone surrogate)"


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a character UTF-8 cannot encode."""
    return _SURROGATE.search(text) is not None


def any_surrogate(texts: Iterable[str]) -> bool:
    """Whether any of ``texts`` holds one: one regex search over them joined (C speed, no Python
    frame per string), which is how a clean column is passed in bulk."""
    return _SURROGATE.search(" ".join(texts)) is not None


def surrogate_mask(values: np.ndarray) -> np.ndarray:
    """Which entries of an object array are strings holding a surrogate (non-strings: False)."""
    is_str = np.fromiter(map(isinstance, values, repeat(str)), bool, len(values))
    mask = np.zeros(len(values), dtype=bool)
    strings = values[is_str]
    if len(strings) and any_surrogate(strings):
        mask[is_str] = [has_surrogate(v) for v in strings]
    return mask


def readable(text: str) -> str:
    """``text`` with each surrogate written as its escape (``a\\ud800``): valid UTF-8, and says
    which character it was."""
    if not has_surrogate(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def storable(value: Any) -> Any:
    """A JSON-like value with every string (keys too) made ``readable``: what a dead letter keeps of
    a refused record, so that the refusal itself can be stored and shown.

    The usual payload has no such text and is returned as it is after one C-level JSON scan; a
    payload nested too deep for that scan (a hostile body) is returned as it is too, since walking
    it here would only fail the same way.
    """
    try:
        if not has_surrogate(json.dumps(value, ensure_ascii=False, default=str)):
            return value
    except RecursionError:
        return value
    return _escaped(value)


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    return value
