"""IdMap keeps ids as exact strings and maps them vectorised."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsmith import id_table
from recsmith.id_table import IdTable
from recsmith.ids import IdMap, check_id, id_problem, id_problems
from recsmith.ranking import row_kernel


def test_round_trip_keeps_leading_zeros_and_unknowns_are_minus_one() -> None:
    ids, codes = IdMap.from_values(["0739079891", "42", "0739079891", "é-ü"])
    np.testing.assert_array_equal(codes, [0, 1, 0, 2])
    np.testing.assert_array_equal(ids.to_index(["42", "nope", "0739079891"]), [1, -1, 0])
    assert list(ids.to_external(np.array([0, 2]))) == ["0739079891", "é-ü"]
    again = IdMap(ids.to_array().astype(object))
    assert again == ids and again.to_external(np.array([0]))[0] == "0739079891"


def test_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        IdMap(["a", "a"])


@pytest.mark.parametrize("mapped", [False, True], ids=["dict-map", "mapped"])
def test_a_reordered_map_is_the_checked_map_of_the_ids_in_that_order(mapped: bool) -> None:
    """``reordered`` (a renumbered validation past's items, without the uniqueness hash)
    answers as the map ``__init__`` builds, checked, from the ids in that order: the same
    ids, and the same lookups through the dict (a few ids) and through pandas (more than
    ``SMALL``)."""
    ids = [f"{n:05d}" for n in range(IdMap.SMALL + 100)]
    base = IdMap.mapped(np.array(ids)) if mapped else IdMap(ids)
    order = np.random.default_rng(0).permutation(len(ids)).astype(np.int32)
    got = base.reordered(order)
    checked = IdMap([ids[n] for n in order])
    assert got == checked
    assert list(got.to_external(np.array([0, 1]))) == [ids[order[0]], ids[order[1]]]
    few = [ids[7], "nope", ids[order[3]]]
    np.testing.assert_array_equal(got.to_index(few), checked.to_index(few))
    np.testing.assert_array_equal(got.to_index(few), [int(np.flatnonzero(order == 7)[0]), -1, 3])
    many = [*ids, "nope"]
    np.testing.assert_array_equal(got.to_index(many), checked.to_index(many))
    with pytest.raises(ValueError, match="permutation"):
        base.reordered(np.concatenate([order[:-1], order[:1]]))  # one index twice
    with pytest.raises(ValueError, match="permutation"):
        base.reordered(order[:-1])
    beyond = order.copy()
    beyond[beyond == len(ids) - 1] = len(ids)  # no repeat, one index past the end
    for bad in (beyond, order - 1, order.astype(np.float64), order.reshape(1, -1)):
        with pytest.raises(ValueError, match="permutation"):
            base.reordered(bad)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0739079891", None),
        ("café ☕ 書", None),
        ("a b", None),
        ("x" * 256, None),
        ("", "must not be empty"),
        (" \u3000", "must not be empty"),
        ("x" * 257, "longer than 256 characters"),
        ("a\tb", "contains control characters"),
        ("a\x7f", "contains control characters"),
        ("a\x85", "contains control characters"),  # C1 (NEL)
        ("x/similar", "contains '/' (an id is one URL path segment)"),
        ("a\ud800", "not valid Unicode (lone surrogate)"),
        ("/\udfff\x00", "not valid Unicode (lone surrogate)"),  # the worst problem is named
    ],
)
def test_the_id_rule(value: str, reason: str | None) -> None:
    assert id_problem(value) == reason
    assert id_problems([value]).tolist() == [reason]
    if reason is None:
        assert check_id(value) == value
    else:
        with pytest.raises(ValueError, match=re.escape(reason)):
            check_id(value)


_HOSTILE = st.text(
    st.sampled_from(["a", "é", " ", "/", "\t", "\x00", "\x7f", "\x9f", "\ud800", "\udfff", "😀"]),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(_HOSTILE, max_size=30), max_length=st.integers(1, 8))
def test_the_column_screen_never_changes_the_verdict(ids: list[str], max_length: int) -> None:
    """``id_problems`` skips ids its screen passes: it must agree with ``id_problem`` on each."""
    expected = [id_problem(v, max_length) for v in ids]
    assert id_problems(ids, max_length).tolist() == expected
    assert id_problems(np.array(ids, dtype=object), max_length).tolist() == expected


_ID_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(_ID_TEXT, min_size=1, max_size=30, unique=True), asked=st.lists(_ID_TEXT))
def test_a_mapped_map_answers_as_the_dict_map_does(ids: list[str], asked: list[str]) -> None:
    """The release's mapped form (binary search over fixed-width ids) against a plain dict of
    the ids: every known id, every unknown one, prefixes and extensions of known ones (a cast
    to the stored width must never cut an unknown id into a known one)."""
    plain = {value: i for i, value in enumerate(ids)}
    stored = np.asarray(ids).astype(str)
    mapped = IdMap.mapped(stored)
    tricky = (
        [x[:-1] for x in ids if len(x) > 1]
        + [x + "z" for x in ids]
        + [x + "\u00e9" for x in ids]
        + [x + "\x00" for x in ids]
    )
    queries = [*ids, *asked, *tricky]
    expected = [plain.get(q, -1) for q in queries]
    assert mapped.to_index(queries).tolist() == expected
    clean = [q for q in queries if "\x00" not in q]  # a batch of plain str: the screen's fast path
    assert mapped.to_index(clean).tolist() == [plain.get(q, -1) for q in clean]
    assert len(mapped) == len(ids) and (ids[0] in mapped) and ("\x1fnot" not in mapped)
    back = mapped.to_external(np.arange(len(ids)))
    assert back.dtype == object and back.tolist() == ids
    assert mapped == IdMap(ids) and mapped.external_ids.tolist() == ids
    assert mapped.to_index([]).tolist() == []


def test_uuid4_hex_is_the_standard_librarys_uuid4(monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle: ``uuid.UUID(bytes=..., version=4)``, which ``uuid.uuid4`` builds from the same 16
    random bytes (``random_16``'s, fixed here); every byte value at the version and variant
    positions is tried."""
    import os
    import uuid

    from recsmith import ids
    from recsmith.ids import uuid4_hex

    for value in range(256):
        raw = bytearray(os.urandom(16))
        raw[6] = raw[8] = value
        with monkeypatch.context() as patch:
            patch.setattr(ids, "random_16", lambda raw=bytes(raw): raw)
            assert uuid4_hex() == uuid.UUID(bytes=bytes(raw), version=4).hex
    drawn = {uuid4_hex() for _ in range(100)}
    assert len(drawn) == 100
    assert all(
        uuid.UUID(hex=h).version == 4 and uuid.UUID(hex=h).variant == uuid.RFC_4122 for h in drawn
    )


def test_the_random_pool_hands_out_urandoms_bytes_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Oracle: the bytes ``os.urandom`` returned (a counter here), 16 a call, in the order
    drawn, none twice, one draw of ``_POOL_BYTES`` per 256 calls."""
    from recsmith import ids

    draws: list[int] = []

    def counted(n: int) -> bytes:
        draws.append(n)
        start = sum(draws) - n
        return b"".join((start + i).to_bytes(4, "big") for i in range(0, n, 4))

    monkeypatch.setattr(os, "urandom", counted)
    pool = ids._RandomPool()
    taken = b"".join(pool.take() for _ in range(600))
    assert taken == b"".join(i.to_bytes(4, "big") for i in range(0, 600 * 16, 4))
    assert draws == [ids._POOL_BYTES] * 3  # 600 ids: three draws of 256 ids each


def test_a_forked_child_draws_its_own_ids() -> None:
    """A child forked after the parent filled its pool must not hand out the parent's next
    bytes (two workers forked from one server would give requests the same ids)."""
    import os

    from recsmith.ids import random_16

    random_16()  # the pool holds bytes for 255 more ids
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, random_16())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    childs = os.read(read, 16)
    os.close(read)
    assert len(childs) == 16 and childs != random_16()


_WEAK_HASHES = {
    "every id in slot 0": lambda ids, bits: np.zeros(len(ids), np.int64),
    # every probe runs off the end of the table and wraps around to slot 0
    "every id in the last slot": lambda ids, bits: np.full(len(ids), (1 << bits) - 1, np.int64),
    "the first character": lambda ids, bits: (
        ids.view(np.uint32).reshape(len(ids), -1)[:, 0].astype(np.int64) % 3
    ),
}


@pytest.mark.parametrize("weak", sorted(_WEAK_HASHES))
@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(_ID_TEXT, min_size=1, max_size=40, unique=True),
    asked=st.lists(st.one_of(_ID_TEXT, st.sampled_from(["", "\x00", "a\x00b", "toolongforthem"]))),
)
def test_colliding_ids_probe_on_to_their_own_slot(
    weak: str, ids: list[str], asked: list[str]
) -> None:
    """With a hash that sends ids to a handful of slots (or all to one, or to the last slot so
    that probes wrap around), every id must still be found at its own index and every other
    query, duplicates included, answer -1: the table's probing against a dict."""
    plain = {value: i for i, value in enumerate(ids)}
    queries = [*ids, *asked, *asked, *ids[::-1]]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(id_table, "hash_rows", _WEAK_HASHES[weak])
        # the compiled pass hashes as ``hash_rows`` does: a table built by another hash is
        # numpy's probing's case (the pass's chains: tests/test_find_ids.py)
        patch.setattr(row_kernel, "ready", lambda: None)
        mapped = IdMap.mapped(np.asarray(ids).astype(str))
        got = mapped.to_index(queries)
    assert got.dtype == np.int32
    assert got.tolist() == [plain.get(q, -1) for q in queries]


def test_the_table_holds_each_id_once_and_is_at_most_half_full() -> None:
    ids = np.array([f"i{n:05d}" for n in range(3000)])
    table = IdTable(ids)
    slots = table._slots
    assert len(slots) >= 2 * len(ids) and len(slots) & (len(slots) - 1) == 0
    assert sorted(slots[slots >= 0].tolist()) == list(range(len(ids)))


def test_another_process_hashes_alike() -> None:
    """Workers build their tables apart: a fresh interpreter (another hash seed) must place ids
    in the same slots as this one."""
    code = "from recsmith.id_table import hash_rows; import numpy as np; " + (
        "print(hash_rows(np.array(['abc', 'i0739079891', 'é']), 24).tolist())"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONHASHSEED": "random"}
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    here = id_table.hash_rows(np.array(["abc", "i0739079891", "é"]), 24).tolist()
    assert there.stdout.strip() == str(here), there.stderr


def test_the_hash_is_the_documented_weighted_sum_not_a_salted_one() -> None:
    """Every worker must build the same table: the hash against a plain-Python evaluation of
    its formula (code units times fixed odd weights, mod 2**64, top bits)."""
    ids = np.array(["abc", "zz\u00e9", "0739079891", "x"])
    width = ids.dtype.itemsize // 4
    weights = [int(w) for w in id_table._weights(width)]
    assert all(w % 2 == 1 for w in weights)
    expected = []
    for value in ids.tolist():
        units = [ord(c) for c in value] + [0] * (width - len(value))
        total = sum(u * w for u, w in zip(units, weights, strict=True)) % 2**64
        expected.append(total >> (64 - 20))
    assert id_table.hash_rows(ids, 20).tolist() == expected


def test_a_mapped_lookup_refuses_what_could_only_be_cut_or_cast_into_an_id() -> None:
    """Ids longer than the stored width, holding NUL, or not str at all are -1 even where a
    cast would make them a known id; a query of numpy strings, an empty query and an empty map
    answer as a dict would."""
    ids = ["ab", "abc", "5", "None", "b'x'", "é"]
    mapped = IdMap.mapped(np.asarray(ids))
    queries: list[object] = ["abc", "abcd", "ab\x00", "a\x00", "\x00ab", 5, None, b"x", "é", "ab"]
    assert mapped.to_index(queries).tolist() == [1, -1, -1, -1, -1, -1, -1, -1, 5, 0]
    assert mapped.to_index(["Nonesense", "abc", "b'x'y", "éé"]).tolist() == [-1, 1, -1, -1]
    # no NUL in the batch: what is not a str is refused by the screen itself, not cast
    assert mapped.to_index([5, None, b"x", "abc", "None"]).tolist() == [-1, -1, -1, 1, 3]
    assert mapped.to_index(np.array(["abc", "abcdef", "5"])).tolist() == [1, -1, 2]
    assert mapped.to_index([]).tolist() == [] and mapped.to_index([]).dtype == np.int32
    empty = IdMap.mapped(np.array([], dtype="<U3"))
    assert empty.to_index(["a", "b"]).tolist() == [-1, -1] and "a" not in empty
    with pytest.raises(ValueError, match="fixed-width unicode"):
        IdMap.mapped(np.array([1, 2]))


@pytest.mark.parametrize("order", ["<", ">"])
def test_a_mapped_lookup_finds_ids_stored_in_either_byte_order(order: str) -> None:
    """An ids.npy written on a big-endian host (``>U``) is found as a little-endian one is:
    the query's code units are converted to the stored order, not reinterpreted."""
    ids = np.array(["ab", "abc", "", "é😀"], dtype=f"{order}U3")
    mapped = IdMap.mapped(ids)
    assert mapped.to_index(["ab", "abc", "abcd", "é😀", "x"]).tolist() == [0, 1, -1, 3, -1]
    assert mapped.to_index(np.array(["abc", "ab"], dtype=">U3")).tolist() == [1, 0]
    assert mapped.to_index(["ab\x00", "abc", 5]).tolist() == [-1, 1, -1]  # the screened path
    assert "abc" in mapped and "abcd" not in mapped
