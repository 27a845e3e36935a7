"""``IdTable.find``'s compiled pass (``row_kernel.find_ids``): each wanted id's index as a dict
of the ids says (-1: not one of them) and as numpy's probing (``IdTable._probed``) says, over
tables with long probe chains, ids of every stored width, ids that differ in their last code
unit only, shorter ids padded with NUL; the cases it leaves to numpy."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from recsmith.id_table import IdTable, _weights
from recsmith.ids import IdMap
from recsmith.ranking import row_kernel


def _compiled(library: ctypes.CDLL, table: IdTable, wanted: np.ndarray) -> np.ndarray | None:
    return row_kernel.find_ids(
        library, wanted, table._ids, table._slots, table._bits, _weights(wanted.dtype.itemsize // 4)
    )


@pytest.mark.parametrize("seed", range(40))
def test_each_id_is_found_at_its_index_and_others_are_not(library: ctypes.CDLL, seed: int) -> None:
    """Drawn catalogues (1 to 5,000 ids, 1 to 12 code units, non-ASCII too), asked for ids they
    hold, ids they do not (a held id with its last unit changed, a prefix of one), repeated."""
    rng = np.random.default_rng(seed)
    alphabet = list("ab0123456789éж") if seed % 3 == 0 else list("0123456789")
    n = int(rng.integers(1, 5000))
    width = int(rng.integers(1, 13))
    ids = {"".join(rng.choice(alphabet, int(rng.integers(1, width + 1)))) for _ in range(n)}
    stored = np.asarray(sorted(ids), dtype=f"<U{width}")
    table = IdTable(stored)
    held = rng.choice(stored, 200).tolist()
    others = [h[:-1] + ("z" if h[-1] != "z" else "y") for h in held[:50]] + [h[:-1] for h in held]
    asked = [*held, *others]
    wanted = np.asarray(asked, dtype=stored.dtype)
    got = _compiled(library, table, wanted)
    assert got is not None and got.dtype == np.int32
    position = {s: i for i, s in enumerate(stored.tolist())}
    assert got.tolist() == [position.get(a, -1) for a in asked]
    assert np.array_equal(got, table._probed(wanted))
    assert np.array_equal(table.find(wanted), got)


def test_a_table_crowded_into_probe_chains(library: ctypes.CDLL) -> None:
    """Ids found past their first slot (a chain of collisions) and an id not held whose search
    crosses the chain to the empty slot after it: one multiplier for every code unit, so ids
    whose units add up alike hash alike (the six anagrams of "abc", and "bbb", not held); the
    slots filled by linear probing written out here."""
    stored = np.asarray(["abc", "acb", "bac", "bca", "cab", "cba", "x"], dtype="<U3")
    weights = np.full(3, np.uint64(0x9E3779B97F4A7C15), np.uint64)
    bits = 5

    def hashed(ids: np.ndarray) -> list[int]:
        units = ids.view(np.uint32).reshape(len(ids), 3).astype(np.uint64)
        return ((units @ weights) >> np.uint64(64 - bits)).astype(np.int64).tolist()

    slots = np.full(1 << bits, -1, np.int32)
    for index, at in enumerate(hashed(stored)):
        while slots[at] >= 0:
            at = (at + 1) % len(slots)
        slots[at] = index
    assert len(set(hashed(stored[:6]))) == 1  # one chain of six
    asked = ["cba", "bca", "abc", "bbb", "x", "xy", "acb", "cab", "bac"]
    wanted = np.asarray(asked, dtype="<U3")
    got = row_kernel.find_ids(library, wanted, stored, slots, bits, weights)
    assert got is not None
    position = {s: i for i, s in enumerate(stored.tolist())}
    assert got.tolist() == [position.get(a, -1) for a in asked]


def test_a_mapped_id_map_answers_through_the_pass(library: ctypes.CDLL) -> None:
    """``IdMap.to_index`` on a release's fixed-width ids: the pass answers (the numpy probing is
    not asked), ids too long or holding NUL screened out as before."""
    ids = IdMap.mapped(np.asarray(["u1", "u22", "u333"], dtype="<U4"))
    calls = []
    table_find = IdTable._probed

    def spy(self: IdTable, wanted: np.ndarray) -> np.ndarray:
        calls.append(len(wanted))
        return table_find(self, wanted)

    IdTable._probed = spy  # type: ignore[method-assign]
    try:
        got = ids.to_index(["u333", "u1", "u4", "u3333x", "u1\x00", "u22"])
    finally:
        IdTable._probed = table_find  # type: ignore[method-assign]
    assert got.tolist() == [2, 0, -1, -1, -1, 1]
    assert calls == []


def test_arrays_it_does_not_read_are_left_to_numpy(library: ctypes.CDLL) -> None:
    """Wanted ids of another width than the stored ones, a slot past the ids: None."""
    stored = np.asarray(["a", "b"], dtype="<U2")
    table = IdTable(stored)
    wanted = np.asarray(["a"], dtype="<U3")
    assert _compiled(library, table, wanted) is None
    slots = table._slots.copy()
    slots[slots >= 0] = 7
    assert (
        row_kernel.find_ids(
            library, stored, stored, slots, table._bits, _weights(stored.dtype.itemsize // 4)
        )
        is None
    )
