"""A stable argsort of wide non-negative integer keys in linear time, for a request batch's
thousands of rows: one radix pass per 16-bit digit, lowest first.

numpy's stable argsort sorts 16-bit integers by radix (linear) but 64-bit ones by timsort, whose
cost grows much faster than the rows here: 387 µs for a batch of 64's 16,500 candidate keys of
48 bits (query above a score's bits), 527 µs for its 20,000 proposals' 23-bit keys, against 213
and 155 µs by digits (three and two passes). Below a few thousand rows timsort is as quick or
quicker (see ``ROWS_PER_PASS``), so callers ask ``by_digits`` first.

Where the key and the row index fit in 64 bits together, ``packed_order`` beats both: each key
shifted above its row index makes every value distinct, so numpy's unstable vectorised sort of
plain integers (AVX-512/AVX2 quicksort) gives the stable order — 25 against 302 µs by timsort
for a batch of 16's 4,800 candidate keys of 36 bits (issue #19); callers ask ``packs`` first.
"""

from __future__ import annotations

import numpy as np

#: Rows per 16-bit pass from which ``by_digits`` takes the passes. Measured (thread CPU, 10th
#: percentile, a loaded 2-core VM; int64 keys shaped as a batch's: merge keys of 20-22 bits,
#: best_first keys of 35-38, rows grouped by query): one pass wins well below (8 against 17 µs at
#: 1,500 rows); two passes break even at 2,000-3,000 rows (20 against 20 µs, 27 against 28) and
#: win from 4,000 (34 against 38); three passes lose by ~1.2x up to 9,500 rows (117 against 93 µs
#: at 9,000) and win from 10,000, where timsort's cost per row jumps (130 against 166; 209
#: against 338 at 16,500). 3,000 a pass is the two-pass break-even; three passes then start at
#: 9,000 rows, where they still lose up to ~25 µs until 10,000 (a batch of ~35 queries): one
#: constant per pass cannot close that window without moving two passes past their gains.
ROWS_PER_PASS = 3000


def passes(bits: int) -> int:
    """16-bit digits in a key of ``bits`` bits (at least one)."""
    return max((bits + 15) // 16, 1)


def by_digits(n_rows: int, bits: int) -> bool:
    """Whether ``stable_order`` beats timsort for ``n_rows`` keys of ``bits`` bits (at most 64)."""
    return bits <= 64 and n_rows >= ROWS_PER_PASS * passes(bits)


#: Rows from which ``packed_order`` beats numpy's stable argsort (timsort) and ``np.lexsort`` of
#: (score, query) on unsorted keys. Measured at 500 rows, just below this threshold (the
#: crossover lies between 260 and 500; 512 rounds it up): 4.3 against 5.7 and 9.0 µs, 7.8
#: against 12.6 and 79 at 1,200 (best_first's 36-bit keys; 4.6 against 4.9 µs at 500 for merge's
#: 21-bit keys); at 260 the packing's own passes cost more than they save (3.5 against 2.6 µs).
PACKED_ROWS = 512


def _index_bits(n_rows: int) -> int:
    """Bits of the largest row index of ``n_rows`` rows (at least one)."""
    return max(int(n_rows - 1).bit_length(), 1)


def packs(n_rows: int, bits: int) -> bool:
    """Whether ``packed_order`` serves ``n_rows`` keys of ``bits`` bits: rows enough for it to
    win, and room for the row index beside the key in 64 bits."""
    return n_rows >= PACKED_ROWS and bits + _index_bits(n_rows) <= 64


def packed_order(key: np.ndarray, bits: int) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for a 1-D integer ``key`` whose values are non-negative
    and below ``2 ** bits``, where ``bits`` and the row index's bits fit in 64: one sort of the
    keys shifted above their row index (every packed value distinct, so any sort is stable),
    the index read back from the low bits."""
    shift = _index_bits(len(key))
    if bits + shift > 64:
        raise ValueError(f"bits: {bits} key bits and {shift} index bits exceed 64")
    packed = np.asarray(key).astype(np.uint64) << np.uint64(shift)
    packed |= np.arange(len(key), dtype=np.uint64)
    packed.sort()
    return (packed & np.uint64((1 << shift) - 1)).astype(np.intp)


def stable_order(key: np.ndarray, bits: int) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for a 1-D int64 or uint64 ``key`` whose values are
    non-negative and below ``2 ** bits``: a stable argsort of each 16-bit digit in turn, lowest
    first, each pass on the rows in the order the passes before left them (LSD radix). The
    digits are read as a strided view of the key's own bytes (little-endian words), so no
    shifted copy of the key is made."""
    key = np.ascontiguousarray(key)
    if key.dtype not in (np.int64, np.uint64):
        raise TypeError(f"key: expected int64 or uint64, got {key.dtype}")
    digits = key.view(np.uint16).reshape(len(key), 4)
    if not np.little_endian:  # the lowest digit is the last word of each key
        digits = digits[:, ::-1]
    order = np.argsort(digits[:, 0], kind="stable")
    for d in range(1, passes(bits)):
        order = order.take(np.argsort(digits[:, d].take(order), kind="stable"))
    return order


def _ascending(key: np.ndarray, low: int) -> bool:
    """Whether ``key`` (of minimum ``low``) is already non-decreasing: its first value read
    first, which rejects most unsorted keys for free, then every neighbouring pair. group_rank's
    callers often pass sorted keys (first_occurrence's pair keys, a batch's query column), where
    numpy's timsort is one linear scan and a packed sort would cost 10-18x that."""
    return int(key[0]) == low and bool((key[1:] >= key[:-1]).all())


def stable_argsort(key: np.ndarray) -> np.ndarray:
    """``key.argsort(kind="stable")`` for a 1-D integer ``key``: the row order itself where the
    key is already sorted, else packed above the row index (``packed_order``), or by 16-bit
    digits (``stable_order``), where there are keys enough for those to win and they are
    non-negative (their span read from the largest: two reductions of a few microseconds
    against the sort's tens to hundreds); else numpy's own."""
    if len(key) >= PACKED_ROWS and key.dtype.kind in "iu":
        low = int(key.min())
        if _ascending(key, low):
            return np.arange(len(key), dtype=np.intp)
        if low >= 0:
            bits = int(key.max()).bit_length()
            if packs(len(key), bits):
                return packed_order(key, bits)
            if by_digits(len(key), bits):
                return stable_order(key.astype(np.int64, copy=False), bits)
    return key.argsort(kind="stable")
