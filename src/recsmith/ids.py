"""Ids: what an external id may hold, and ``IdMap``, the one translator to dense int32 indices.

Models only ever see dense indices; every boundary (CLI, HTTP, files) speaks strings. Keeping one
class for the translation means an id such as ``0739079891`` can never be turned into a number.

The rule for an id (user, item, session, event) lives here, once, and every door applies it:
event validation, item and user records, imports, and URL path parameters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from recsmith.surrogates import SURROGATES, UNENCODABLE

#: The longest id by default (``events.max_id_length``): ids are keys in the store, Redis and every
#: trained artifact, so one that holds a document instead of a name is refused at the door.
MAX_ID_LENGTH = 256

#: Control characters (C0, DEL, C1): invisible in logs and terminals, and a tab or a newline would
#: split the CSV and TSV files ids are exported to.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
#: What an id may not contain: control characters, lone surrogates (UTF-8 cannot encode them, so no
#: store or file could keep the id) and ``/`` (an id is one URL path segment:
#: ``/v1/items/{item_id}/similar`` must never be read as the item ``x/similar``).
_FORBIDDEN = re.compile(f"[{_CONTROL}/{SURROGATES}]")
_CONTROL_CHAR = re.compile(f"[{_CONTROL}]")
_SURROGATE = re.compile(f"[{SURROGATES}]")


def id_problem(value: str, max_length: int = MAX_ID_LENGTH) -> str | None:
    """Why ``value`` is not a valid id, or None when it is: the rule itself, for one id."""
    if not value or value.isspace():
        return "must not be empty"
    if _FORBIDDEN.search(value):
        if _SURROGATE.search(value):  # the worst problem first: nothing could even store it
            return UNENCODABLE
        if _CONTROL_CHAR.search(value):
            return "contains control characters"
        return "contains '/' (an id is one URL path segment)"
    if len(value) > max_length:
        return f"longer than {max_length} characters"
    return None


def id_problems(ids: Sequence[str] | np.ndarray, max_length: int = MAX_ID_LENGTH) -> np.ndarray:
    """``id_problem`` of each id (an object array, None where valid), for a whole column.

    A million imported events must not pay a Python call per id, so a screen finds the ids that
    could fail (C-level ``map`` passes for lengths and blanks; one regex search over the ids joined
    together, which a clean column passes at once) and only those get ``id_problem``'s verdict.
    The screen only narrows: the reasons always come from ``id_problem``, the one rule.
    """
    n = len(ids)
    reasons = np.full(n, None, dtype=object)
    if n == 0:
        return reasons
    lengths = np.fromiter(map(len, ids), np.int64, n)
    suspect = (lengths == 0) | (lengths > max_length) | np.fromiter(map(str.isspace, ids), bool, n)
    if _FORBIDDEN.search(" ".join(ids)):
        suspect |= np.fromiter((_FORBIDDEN.search(v) is not None for v in ids), bool, n)
    for row in np.flatnonzero(suspect):
        reasons[row] = id_problem(ids[row], max_length)
    return reasons


def check_id(value: str, max_length: int = MAX_ID_LENGTH) -> str:
    """``value`` when it is a valid id, else ``ValueError`` saying why (for pydantic validators
    and URL path parameters)."""
    reason = id_problem(value, max_length)
    if reason is not None:
        raise ValueError(reason)
    return value


class IdMap:
    """An immutable, ordered vocabulary of string ids with vectorised lookups."""

    __slots__ = ("_index", "_lookup")

    #: Up to this many ids, lookups go through a plain dict: a request (one user and the few
    #: hundred items they have) must not pay for building a pandas index (~0.3 ms) when a dict
    #: answers in well under a microsecond per id.
    SMALL = 4096

    def __init__(self, ids: Iterable[str]) -> None:
        arr = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=object)
        index = pd.Index(arr, dtype=object)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise ValueError(f"IdMap ids must be unique; {dup!r} appears more than once")
        self._index = index
        self._lookup: dict[str, int] | None = None

    @classmethod
    def from_values(cls, values: Sequence[str] | np.ndarray) -> tuple[IdMap, np.ndarray]:
        """Build a map from a column of ids (first appearance order) and return the codes too."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=False)
        return cls(np.asarray(uniques, dtype=object)), codes.astype(np.int32)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    def __hash__(self) -> int:  # pragma: no cover - maps are not meant as dict keys
        return id(self)

    def to_index(self, external_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Dense indices for ids; -1 where an id is unknown."""
        if len(external_ids) <= self.SMALL:
            if self._lookup is None:
                ids = self._index.to_numpy()
                self._lookup = dict(zip(ids, range(len(ids)), strict=True))
            get = self._lookup.get
            return np.fromiter((get(i, -1) for i in external_ids), np.int32, len(external_ids))
        target = pd.Index(np.asarray(external_ids, dtype=object), dtype=object)
        return self._index.get_indexer(target).astype(np.int32)

    def to_external(self, indices: np.ndarray) -> np.ndarray:
        """External ids (object array of str) for dense indices; indices must be valid."""
        return self._index.to_numpy()[np.asarray(indices, dtype=np.int64)]

    @property
    def external_ids(self) -> np.ndarray:
        """All ids in index order (object array of str)."""
        return self._index.to_numpy()

    def to_array(self) -> np.ndarray:
        """A fixed-width unicode array: saveable in .npz with allow_pickle=False."""
        return self._index.to_numpy().astype(str)
