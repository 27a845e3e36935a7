"""IdMap: the one translator between external string ids and dense internal int32 indices.

Models only ever see dense indices; every boundary (CLI, HTTP, files) speaks strings. Keeping one
class for the translation means an id such as ``0739079891`` can never be turned into a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd


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
