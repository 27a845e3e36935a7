"""``IdTable``: an open-addressing hash table over a release's fixed-width ids, for ``IdMap``.

A served request turns a user's id and the ~30 items they have into indices. The release keeps
its ids memory-mapped (workers share them), and a binary search over them costs ~17 random reads
of the map per id through the sort order (~7 % of a serving worker's samples, BENCHMARKS §85).
A Python dict of the ids would answer faster but costs ~100 MB per worker at 1M ids; this table
is one int32 array of slots (2-4 slots an id: 8-16 MB at 1M), built vectorised, and looked up a
whole batch at a time: hash every wanted id, read its slot, compare the id stored there, step to
the next slot for those that did not settle; a round or two settles almost all of them.

The hash is deterministic (a fixed weighted sum of the ids' UTF-32 code units, then an
avalanche), not Python's ``hash``, which is salted per process: any two processes build the same
table. A collision costs a probe, never a wrong answer: every probe compares the id itself.
"""

from __future__ import annotations

from functools import cache

import numpy as np

_SEED = 0x1D5


@cache
def _weights(width: int) -> np.ndarray:
    """One odd 64-bit multiplier a character column of ids ``width`` code units wide: fixed by
    the seed, so every process hashes alike."""
    return np.random.default_rng(_SEED).integers(1, 2**63, width, dtype=np.uint64) | np.uint64(1)


def hash_rows(ids: np.ndarray, bits: int) -> np.ndarray:
    """A ``bits``-bit hash of each fixed-width unicode id (int64, one per id): the id's UTF-32
    code units (padded to the width with NUL, as numpy stores it, so a stored id and a wanted
    one cast to the same dtype hash alike) weighted by odd random multipliers and summed modulo
    2**64 (one matrix product for the whole batch), of which the top ``bits`` bits are kept:
    multiply-shift hashing, whose high bits depend on every character."""
    width = ids.dtype.itemsize // 4
    units = np.ascontiguousarray(ids).view(np.uint32).reshape(len(ids), width)
    return ((units.astype(np.uint64) @ _weights(width)) >> np.uint64(64 - bits)).astype(np.int64)


class IdTable:
    """Slots holding each id's index (-1: empty), linear probing, at most half full.

    The slots are the table's only memory; the ids themselves stay in the (mapped) array, which
    every probe compares against, so a hash collision can never return a wrong index.
    """

    __slots__ = ("_bits", "_ids", "_mask", "_slots")

    def __init__(self, ids: np.ndarray) -> None:
        """Build over ``ids`` (fixed-width unicode, unique): every id claims its hashed slot, the
        ones that find it taken (by an earlier round or a rival in the same round) step on to
        the next, round after round, all of them at once."""
        self._bits = max(3, int(2 * len(ids)).bit_length())  # 2**bits slots: >= 2n
        self._ids = np.asarray(ids)  # a plain view: a memmap wraps every result it gives
        self._mask = np.int64((1 << self._bits) - 1)
        self._slots = np.full(1 << self._bits, -1, dtype=np.int32)
        pending = np.arange(len(ids), dtype=np.int32)
        at = hash_rows(ids, self._bits)
        while len(pending):
            free = self._slots[at] == -1
            self._slots[at[free]] = pending[free]  # rivals for one slot: one write stands
            placed = np.zeros(len(pending), dtype=bool)
            placed[free] = self._slots[at[free]] == pending[free]
            pending, at = pending[~placed], (at[~placed] + 1) & self._mask

    def find(self, wanted: np.ndarray) -> np.ndarray:
        """The index of each of ``wanted`` (same dtype as the ids), -1 where it is not one.
        Compiled (``row_kernel.find_ids``) once a loaded pipeline has built the library;
        else ``_probed``."""
        from recsmith.ranking import row_kernel  # here: the kernel's imports reach this module

        library = row_kernel.ready()
        if library is not None:
            found = row_kernel.find_ids(
                library,
                wanted,
                self._ids,
                self._slots,
                self._bits,
                _weights(wanted.dtype.itemsize // 4),
            )
            if found is not None:
                return found
        return self._probed(wanted)

    def _probed(self, wanted: np.ndarray) -> np.ndarray:
        """``find`` by numpy (the compiled pass's oracle): the first probe is taken for the
        whole batch at once (at most half full, the table settles most ids there); only the ids
        that met another id step on, round by round."""
        at = hash_rows(wanted, self._bits)
        held = self._slots[at]
        # An empty slot (-1) reads the last id, which cannot be the one wanted: an id is always
        # met on the probes from its own hash, before any empty slot.
        same = self._ids[held] == wanted
        out = np.where(same, held, -1)
        rows = np.flatnonzero((held >= 0) & ~same)  # met another id: not settled yet
        at = at[rows]
        while len(rows):  # an empty slot ends the search: not an id
            at = (at + 1) & self._mask
            held = self._slots[at]
            same = self._ids[held] == wanted[rows]
            out[rows[same]] = held[same]
            going = (held >= 0) & ~same
            rows, at = rows[going], at[going]
        return out
