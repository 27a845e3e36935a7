"""``digit_sort.stable_order`` against numpy's own stable argsort (timsort on 64-bit keys, the
oracle): equal keys keep their row order, every digit counts (keys from 1 to 64 bits, uint64's
top bit included), and ``by_digits`` picks the passes only where there are rows enough; the
packed path (``packed_order``) is taken exactly where key and row index fit in 64 bits, at the
2 ** k + 1 row counts where the index gains a bit too, and sorted keys skip every sort."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith import digit_sort
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
    for n in (0, 1, 2, PACKED_ROWS, PACKED_ROWS + 1, 1025, 4800, 20_000):
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


@pytest.fixture
def packed_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts ``stable_argsort`` handed to the real ``packed_order``, one per call."""
    calls: list[int] = []
    real = digit_sort.packed_order

    def counted(key: np.ndarray, bits: int) -> np.ndarray:
        calls.append(len(key))
        return real(key, bits)

    monkeypatch.setattr(digit_sort, "packed_order", counted)
    return calls


@pytest.mark.parametrize("n", [PACKED_ROWS, PACKED_ROWS + 1, 1025, 4800])
def test_stable_argsort_packs_exactly_where_key_and_index_fit_64_bits(
    n: int, packed_calls: list[int]
) -> None:
    """Key bits + index bits = 64 is packed, 65 is not (the index's bits counted by hand: a
    2 ** k + 1 row count needs k + 1); both are numpy's stable order. The keys' minimum is 0
    and their top bit is set, so a key's span miscounted by one bit, or a zero minimum taken
    for a negative one, shows as a wrong order or the wrong path."""
    index_bits = {PACKED_ROWS: 9, PACKED_ROWS + 1: 10, 1025: 11, 4800: 13}[n]
    rng = np.random.default_rng(n)
    for key_bits, packed in ((64 - index_bits, True), (65 - index_bits, False)):
        key = rng.integers(0, 1 << key_bits, n, dtype=np.uint64)
        key[rng.choice(n, n // 4)] = key[rng.choice(n, n // 4)]  # equal keys keep row order
        key[0], key[-2] = 0, (1 << key_bits) - 1
        for k in (key, key.astype(np.int64)):
            packed_calls.clear()
            assert stable_argsort(k).tolist() == np.argsort(k, kind="stable").tolist()
            assert packed_calls == ([n] if packed else [])


def test_stable_argsort_packs_from_packed_rows_only(packed_calls: list[int]) -> None:
    rng = np.random.default_rng(3)
    for n, packed in ((PACKED_ROWS - 1, False), (PACKED_ROWS, True)):
        key = rng.integers(0, 1000, n)
        packed_calls.clear()
        assert stable_argsort(key).tolist() == np.argsort(key, kind="stable").tolist()
        assert packed_calls == ([n] if packed else [])


def test_stable_argsort_of_sorted_keys_is_the_row_order_without_a_sort(
    packed_calls: list[int],
) -> None:
    """Keys already non-decreasing (runs of equal keys, negative ones too) are their own stable
    order; one pair out of order anywhere, or a first key above the minimum, is sorted."""
    rng = np.random.default_rng(4)
    runs = np.sort(rng.integers(0, 300, 4800))  # ~16 rows a key
    for key in (runs, runs - 150, np.zeros(PACKED_ROWS, np.int32)):
        assert stable_argsort(key).tolist() == list(range(len(key)))
    assert packed_calls == []
    for i in (1, 2400, 4799):  # the first pair, one in the middle, the last
        key = runs.copy()
        key[i - 1], key[i] = key[i] + 1, key[i - 1]
        assert key[i - 1] > key[i]
        assert stable_argsort(key).tolist() == np.argsort(key, kind="stable").tolist()
    assert packed_calls == [4800] * 3
