"""``IdTable``: an open-addressing hash table over a release's fixed-width ids, for ``IdMap``.

A served request turns a user's id and the ~30 items they have into indices. The release keeps
its ids memory-mapped (workers share them), and a binary search over them costs ~17 random reads
of the map per id through the sort order (~7 % of a serving worker's samples, BENCHMARKS §85).
A Python dict of the ids would answer faster but costs ~100 MB per worker at 1M ids; this table
is one int32 array of slots (2-4 slots an id: 8-16 MB at 1M), built vectorised, and looked up a
whole batch at a time: hash every wanted id, read its slot, compare the id stored there, step to
the next slot for those that did not settle; a round or two settles almost all of them.

The hash is deterministic (FNV-1a over the ids' UTF-32 code units, then a final avalanche), not
Python's ``hash``, which is salted per process: any two processes build the same table.
"""

from __future__ import annotations

import numpy as np

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SHIFT = np.uint64(33)


def hash_rows(ids: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each fixed-width unicode id (uint64, one per id): FNV-1a over the code
    units of the id padded to the width with NUL, as numpy stores it, so the stored id and a
    wanted one cast to the same dtype hash alike. One vectorised pass a character column."""
    width = ids.dtype.itemsize // 4
    units = np.ascontiguousarray(ids).view(np.uint32).reshape(len(ids), width)
    h = np.full(len(ids), _FNV_OFFSET, dtype=np.uint64)
    for column in units.T:
        h ^= column
        h *= _FNV_PRIME
    h ^= h >> _SHIFT
    h *= _MIX
    h ^= h >> _SHIFT
    return h


class IdTable:
    """Slots holding each id's index (-1: empty), linear probing, at most half full.

    The slots are the table's only memory; the ids themselves stay in the (mapped) array, which
    every probe compares against, so a hash collision can never return a wrong index.
    """

    __slots__ = ("_ids", "_mask", "_slots")

    def __init__(self, ids: np.ndarray) -> None:
        """Build over ``ids`` (fixed-width unicode, unique): every id claims its hashed slot, the
        ones that find it taken (by an earlier round or a rival in the same round) step on to
        the next, round after round, all of them at once."""
        size = 1 << max(3, int(2 * len(ids)).bit_length())  # a power of two >= 2n
        self._ids = ids
        self._mask = np.int64(size - 1)
        self._slots = np.full(size, -1, dtype=np.int32)
        pending = np.arange(len(ids), dtype=np.int32)
        at = (hash_rows(ids) & np.uint64(size - 1)).astype(np.int64)
        while len(pending):
            free = self._slots[at] == -1
            self._slots[at[free]] = pending[free]  # rivals for one slot: one write stands
            placed = np.zeros(len(pending), dtype=bool)
            placed[free] = self._slots[at[free]] == pending[free]
            pending, at = pending[~placed], (at[~placed] + 1) & self._mask

    def find(self, wanted: np.ndarray) -> np.ndarray:
        """The index of each of ``wanted`` (same dtype as the ids), -1 where it is not one."""
        out = np.full(len(wanted), -1, dtype=np.int32)
        rows = np.arange(len(wanted))
        at = (hash_rows(wanted) & np.uint64(self._mask)).astype(np.int64)
        while len(rows):
            held = self._slots[at]
            hit = held >= 0
            hit[hit] = self._ids[held[hit]] == wanted[rows[hit]]
            out[rows[hit]] = held[hit]
            going = (held >= 0) & ~hit  # an empty slot ends the search: not an id
            rows, at = rows[going], (at[going] + 1) & self._mask
        return out
