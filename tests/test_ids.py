"""IdMap keeps ids as exact strings and maps them vectorised."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsmith.ids import IdMap, check_id, id_problem, id_problems, sort_order


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
    mapped = IdMap.mapped(stored, sort_order(stored))
    tricky = (
        [x[:-1] for x in ids if len(x) > 1]
        + [x + "z" for x in ids]
        + [x + "\u00e9" for x in ids]
        + [x + "\x00" for x in ids]
    )
    queries = [*ids, *asked, *tricky]
    expected = [plain.get(q, -1) for q in queries]
    assert mapped.to_index(queries).tolist() == expected
    assert len(mapped) == len(ids) and (ids[0] in mapped) and ("\x1fnot" not in mapped)
    back = mapped.to_external(np.arange(len(ids)))
    assert back.dtype == object and back.tolist() == ids
    assert mapped == IdMap(ids) and mapped.external_ids.tolist() == ids
    assert mapped.to_index([]).tolist() == []


def test_uuid4_hex_is_the_standard_librarys_uuid4(monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle: ``uuid.UUID(bytes=..., version=4)``, which ``uuid.uuid4`` builds from the same 16
    random bytes (``os.urandom``'s, fixed here); every byte value at the version and variant
    positions is tried."""
    import os
    import uuid

    from recsmith.ids import uuid4_hex

    urandom = os.urandom
    for value in range(256):
        raw = bytearray(urandom(16))
        raw[6] = raw[8] = value
        with monkeypatch.context() as patch:
            patch.setattr(os, "urandom", lambda n, raw=bytes(raw): raw[:n])
            assert uuid4_hex() == uuid.UUID(bytes=bytes(raw), version=4).hex
    drawn = {uuid4_hex() for _ in range(100)}
    assert len(drawn) == 100
    assert all(
        uuid.UUID(hex=h).version == 4 and uuid.UUID(hex=h).variant == uuid.RFC_4122 for h in drawn
    )
