"""``digit_sort.stable_order`` against numpy's own stable argsort (timsort on 64-bit keys, the
oracle): equal keys keep their row order, every digit counts (keys from 1 to 64 bits, uint64's
top bit included), and ``by_digits`` picks the passes only where there are rows enough."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.digit_sort import (
    PACKED_ROWS,
    ROWS_PER_PASS,
    by_digits,
    packed_order,
    packs,
    passes,
    stable_argsort,
    stable_order,
)


@pytest.mark.parametrize("bits", [1, 7, 16, 17, 23, 32, 33, 48, 63])
def test_stable_order_is_numpys_stable_argsort_of_int64_keys(bits: int) -> None:
    rng = np.random.default_rng(bits)
    for n in (0, 1, 2, 100, 5000):
        # few distinct values (long runs of equal keys) and the extremes of the span
        pool = np.concatenate([rng.integers(0, 1 << bits, 40), [0, (1 << bits) - 1]])
        key = rng.choice(pool, n).astype(np.int64)
        assert stable_order(key, bits).tolist() == np.argsort(key, kind="stable").tolist()


def test_stable_order_reads_every_digit_of_uint64_keys() -> None:
    rng = np.random.default_rng(64)
    pool = np.concatenate(
        [
            rng.integers(0, 1 << 63, 30, dtype=np.uint64) << np.uint64(1),
            np.asarray([0, 1, 1 << 16, 1 << 32, 1 << 48, (1 << 64) - 1], np.uint64),
        ]
    )
    key = rng.choice(pool, 4000)
    assert stable_order(key, 64).tolist() == np.argsort(key, kind="stable").tolist()


def test_stable_order_refuses_other_dtypes() -> None:
    with pytest.raises(TypeError, match="int64 or uint64"):
        stable_order(np.zeros(3, np.int32), 8)


def test_by_digits_wants_rows_enough_for_its_passes() -> None:
    assert passes(0) == 1 and passes(16) == 1 and passes(17) == 2 and passes(64) == 4
    assert not by_digits(ROWS_PER_PASS * 2 - 1, 23)
    assert by_digits(ROWS_PER_PASS * 2, 23)
    assert not by_digits(ROWS_PER_PASS * 3 - 1, 48)
    assert by_digits(ROWS_PER_PASS * 3, 48)
    assert not by_digits(10**9, 65)


@pytest.mark.parametrize("bits", [1, 13, 21, 36, 50])
def test_packed_order_is_numpys_stable_argsort(bits: int) -> None:
    """Long runs of equal keys keep their row order: the row index packed under each key."""
    rng = np.random.default_rng(100 + bits)
    for n in (0, 1, 2, PACKED_ROWS, 4800, 20_000):
        if not bits + max(n - 1, 1).bit_length() <= 64:
            continue
        pool = np.concatenate([rng.integers(0, 1 << bits, 30), [0, (1 << bits) - 1]])
        key = rng.choice(pool, n).astype(np.int64)
        assert packed_order(key, bits).tolist() == np.argsort(key, kind="stable").tolist()


def test_packed_order_refuses_keys_without_room_for_the_index() -> None:
    assert packs(PACKED_ROWS, 55) and not packs(PACKED_ROWS, 56)  # 512 rows: a 9-bit index
    assert not packs(PACKED_ROWS - 1, 8)  # too few rows to win
    with pytest.raises(ValueError, match="exceed 64"):
        packed_order(np.zeros(PACKED_ROWS, np.int64), 56)


def test_stable_argsort_is_numpys_on_every_path() -> None:
    """Below ``PACKED_ROWS``, packed, by digits (keys too wide to pack) and negative keys."""
    rng = np.random.default_rng(5)
    cases = [
        rng.integers(0, 50, 100),  # few rows: numpy's own
        rng.integers(0, 1 << 30, 5000) // 7,  # packed
        rng.integers(0, 1 << 60, 3 * 4 * ROWS_PER_PASS) >> 1,  # 59 bits: by digits
        rng.integers(-(1 << 40), 1 << 40, 3000),  # negative keys: numpy's own
        rng.integers(0, 3, 3000).astype(np.int32),  # long runs of a narrow dtype
    ]
    for key in cases:
        assert stable_argsort(key).tolist() == np.argsort(key, kind="stable").tolist()
