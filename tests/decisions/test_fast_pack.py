"""The writer packs a list's items with pydantic-core's encoder (``rows.pack``, issue #19: the
scores' ``repr`` was most of building a row) and must store the very text the standard library
writes: here ``pack``'s text against ``json.dumps`` (non-finite floats as their names) for
floats of every magnitude and bit pattern, one float a ``pack`` so that each takes the fast
path where it can, the exponent boundaries where the two encoders' formats part, and ids
holding every kind of character; that plain lists really take the fast encoder and the others
the standard one; that what the standard encoder refuses (a ``Decimal``, a set) is still
refused; and, on SQLite and PostgreSQL, every float of lists packed by either encoder read back
to the bit through the readers, and the scores a number to the database's own JSON functions."""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recsmith.config import DecisionSettings
from recsmith.decisions import rows
from recsmith.decisions.log import DecisionLog
from recsmith.decisions.record import decision, ones
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend

#: Where Python's ``repr`` and Ryu's formatting part (``1e-05`` against ``0.00001``, ``1e-07``
#: against ``1e-7``, ``1e+16``) or meet again, and the extremes of float64.
BOUNDARIES = (
    1e-4, 9.999999999999999e-05, 1.5e-5, 1e-5, 1e-6, 1e-7, 1e-10, 0.0001234, 0.00099,
    9999999999999998.0, 1e16, 1.2345e17, 1e22, 123456789.0, 5e-324, 2.2250738585072014e-308,
    1.7976931348623157e308, 0.0, -0.0, 1.0, -2.5, 0.1 + 0.2,
)  # fmt: skip
NON_FINITE = (float("nan"), float("inf"), float("-inf"))


def _oracle(ids: Sequence[Any], scores: Sequence[float], sources: Any, chances: Any) -> str:
    """The packed text as ``json.dumps`` writes it, a non-finite float as its name."""
    named = [[x if math.isfinite(x) else repr(x) for x in v] for v in (scores, chances)]
    items = [list(ids), named[0], [list(s) for s in sources], named[1]]
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def _floats(kind: str, n: int) -> list[float]:
    rng = np.random.default_rng(19)
    if kind == "bits":  # every sign, exponent and mantissa, NaN and infinities among them
        return rng.integers(0, 2**64, n, dtype=np.uint64).view(np.float64).tolist()
    if kind == "float32":  # a ranker's float32 scores widened, at every magnitude
        scale = 10.0 ** rng.integers(-12, 20, n)
        return (rng.standard_normal(n) * scale).astype(np.float32).astype(np.float64).tolist()
    if kind == "unit":
        return rng.random(n).tolist()
    return [*BOUNDARIES, *NON_FINITE] * (n // (len(BOUNDARIES) + 3) + 1)


@pytest.mark.parametrize("kind", ["bits", "float32", "unit", "boundaries"])
def test_packed_text_is_the_standard_encoders_for_floats_of_every_kind(kind: str) -> None:
    values = _floats(kind, 40_000)
    for k in range(0, len(values) - 10, 10):
        scores = tuple(values[k : k + 10])
        # every other list exploring: its propensities from the same pool
        chances = tuple(values[k + 3 : k + 13]) if k % 20 else ones(10)
        ids = tuple(f"i{k + j}" for j in range(10))
        sources = tuple(("als", "cooc")[: (k + j) % 3] for j in range(10))
        assert rows.pack(ids, scores, sources, chances) == _oracle(ids, scores, sources, chances)


#: ``BOUNDARIES``' members ``to_json`` writes as ``encode_items`` does: the fast path's.
FAST_BOUNDARIES = (
    1e-4, 0.0001234, 0.00099, 9999999999999998.0, 123456789.0, 0.0, -0.0, 1.0, -2.5, 0.1 + 0.2,
)  # fmt: skip


@pytest.mark.parametrize("kind", ["bits", "float32", "unit", "boundaries"])
def test_each_float_alone_packs_as_the_standard_encoder_writes_it(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One float a ``pack``, as a score and as a propensity, so that every float ``to_json``
    writes plainly goes through the fast path (in a list, one exponent sends all ten to the
    standard encoder: random bit patterns never reached it, rv-dec25); the standard encoder
    counted, so the fast path is seen taken where it should be."""
    standard = rows._standard_pack
    calls: list[int] = []

    def counted(*args: Any) -> str:
        calls.append(1)
        return standard(*args)

    monkeypatch.setattr(rows, "_standard_pack", counted)
    fast = []
    for v in _floats(kind, 20_000):
        before = len(calls)
        assert rows.pack(("a",), (v,), ((),), ones(1)) == _oracle(("a",), (v,), ((),), ones(1))
        assert rows.pack(("a",), (0.5,), ((),), (v,)) == _oracle(("a",), (0.5,), ((),), (v,))
        if len(calls) == before:  # both packs took the fast path
            fast.append(v)
        else:  # one float, so both or neither
            assert len(calls) == before + 2
    if kind == "boundaries":
        assert sorted(set(_bits(fast))) == sorted(_bits(FAST_BOUNDARIES))  # -0.0 among them
    else:  # bits: ~3 % plain; float32 scores at 1e-12..1e19: ~half; unit: all but the tiny
        assert len(fast) > {"bits": 300, "float32": 5_000, "unit": 19_000}[kind]


#: Every character up to U+0800 (control characters, quotes, backslash, DEL, Latin, Greek …),
#: the JSON-in-JavaScript separators, a BOM, astral characters and a lone surrogate.
CHARS = "".join(map(chr, range(1, 0x800))) + "\u2028\u2029\ufeff🙂\U0010ffff"


@pytest.mark.parametrize("extra", ["", "\ud800"], ids=["unicode", "lone-surrogate"])
def test_ids_and_sources_of_every_character_pack_as_the_standard_encoder_writes(
    extra: str,
) -> None:
    text = CHARS + extra
    ids = tuple(text[k : k + 9] for k in range(0, len(text), 9))
    n = len(ids)
    sources = tuple((text[(k * 7) % len(text) :][:3], '"\\') for k in range(n))
    scores = tuple(1.0 / (k + 1) for k in range(n))
    assert rows.pack(ids, scores, sources, ones(n)) == _oracle(ids, scores, sources, ones(n))


PLAIN = [
    ((), (), (), ones(0)),
    (("a", 'é"\\'), (0.7071067690849304, 2.0), (("als",), ()), ones(2)),
    (("a", "b"), (0.5, 0.25), (("p",), ("q", "r")), (0.5, 0.75)),
    (tuple("abcdefghij"), FAST_BOUNDARIES, ((),) * 10, (-0.0, *FAST_BOUNDARIES[1:])),
    (("x",) * 1025, (3.25,) * 1025, (("s",),) * 1025, ones(1025)),
]
STANDARD = [
    (("a",), (1e-5,), ((),), ones(1)),  # to_json: 0.00001
    (("a",), (1e-7,), ((),), ones(1)),  # to_json: 1e-7
    (("a",), (1e20,), ((),), ones(1)),
    (("a",), (0.5,), ((),), (2e-9,)),  # the propensities' text is checked too
    (("a",), (float("nan"),), ((),), ones(1)),
    (("a",), (1.0,), ((),), (float("inf"),)),
    (("\ud800",), (1.0,), ((),), ones(1)),  # pydantic-core cannot encode it
]


def test_plain_lists_take_the_fast_encoder_the_others_the_standard_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The standard encoder counted: never called for a plain list (else ``pack`` would be
    no faster than before), once for each list only it writes right."""
    standard = rows._standard_pack
    calls: list[tuple[Any, ...]] = []

    def counted(*args: Any) -> str:
        calls.append(args)
        return standard(*args)

    monkeypatch.setattr(rows, "_standard_pack", counted)
    for args in PLAIN:
        assert rows.pack(*args) == _oracle(*args)
    assert calls == []
    for args in STANDARD:
        assert rows.pack(*args) == _oracle(*args)
    assert calls == STANDARD


def test_integer_and_decimal_propensities_are_recorded_as_floats() -> None:
    """``decision`` makes them floats, as it does scores: ``pack`` refuses a ``Decimal``, as
    the standard encoder does (``to_json`` would write it as a JSON string)."""

    d = decision("r", unit=None, unit_kind="none", route="popular", release="x",
                 item_ids=["a", "b"], scores=[1, 2], sources=[(), ()],
                 propensities=[1, Decimal("0.25")])  # fmt: skip
    assert d.propensities == (1.0, 0.25) and all(type(p) is float for p in d.propensities)
    assert rows.pack_items(d) == '[["a","b"],[1.0,2.0],[[],[]],[1.0,0.25]]'


#: Scores or propensities ``to_json`` writes (a string, an array) but the standard encoder
#: refuses: ``pack`` refuses them as it did before (rv-dec25).
REFUSED = [
    ((Decimal("0.25"),), ones(1)),
    ((Decimal("1E+2"),), ones(1)),  # its text holds a capital E
    ((Fraction(1, 4),), ones(1)),
    ({0.5}, ones(1)),
    ((0.5,), (Decimal("0.25"),)),
    ((0.5,), frozenset({0.25})),
    ((0.5,), (x / 4 for x in (1,))),
]


@pytest.mark.parametrize(("scores", "chances"), REFUSED)
def test_what_the_standard_encoder_refuses_pack_refuses(scores: Any, chances: Any) -> None:
    with pytest.raises(TypeError):
        json.dumps([["a"], scores, [[]], chances])
    with pytest.raises(TypeError):
        rows.pack(("a",), scores, ((),), chances)


#: Scores both encoders write, but not always as plain floats: the standard encoder's text.
ODD_SCORES = [(True, False), (None,), ((0.5,), (0.25, 1.0)), (1, -2), (2**70,), [0.5, 0.25]]


@pytest.mark.parametrize("scores", ODD_SCORES, ids=str)
def test_scores_that_are_not_floats_pack_as_the_standard_encoder_writes_them(scores: Any) -> None:
    n = len(scores)
    expected = json.dumps([["a"] * n, scores, [[]] * n, [1.0] * n], separators=(",", ":"))
    assert rows.pack(("a",) * n, scores, ((),) * n, ones(n)) == expected


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    with open_backend(request.param, tmp_path) as found:
        yield found


def _bits(values: Sequence[float]) -> list[bytes]:
    return [struct.pack("<d", v) for v in values]


#: How each database's own JSON functions see a list's first score: a number.
SCORE_TYPE_SQL = {
    "sqlite": "SELECT json_type(items, '$[1][0]') FROM decisions WHERE recommendation_id = ?",
    "postgres": (
        "SELECT json_typeof(items::json -> 1 -> 0) FROM decisions WHERE recommendation_id = %s"
    ),
}


#: What each database's JSON functions call a number.
NUMBER = {"sqlite": {"real", "integer"}, "postgres": {"number"}}


def _score_type(url: str, recommendation_id: str) -> str:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return conn.execute(SCORE_TYPE_SQL["sqlite"], (recommendation_id,)).fetchone()[0]
        finally:
            conn.close()
    import psycopg

    base, schema = url.split("?schema=")
    with psycopg.connect(base) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        found = conn.execute(SCORE_TYPE_SQL["postgres"], (recommendation_id,)).fetchone()
        return str(found[0])


def test_every_float_reads_back_to_the_bit_on_both_stores(
    opened: tuple[EventStore, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lists the fast encoder packs (scores and propensities all in [1e-4, 1e16), -0.0 among
    them; the standard encoder counted, so it is seen not to) and lists the standard one packs
    (float32-widened scores at every magnitude, bit patterns, boundary and non-finite floats),
    through the writer and back through ``get_decision`` and ``scan_decisions``."""
    store, url = opened
    standard = rows._standard_pack
    slow: list[str] = []

    def counted(*args: Any) -> str:
        slow.append(args[0][0])
        return standard(*args)

    monkeypatch.setattr(rows, "_standard_pack", counted)
    log = DecisionLog(store, DecisionSettings())
    lists = {
        "fast": [*_floats("unit", 10), *FAST_BOUNDARIES],
        "fast-explored": [*FAST_BOUNDARIES, *_floats("unit", 10)],
        "ranked": _floats("float32", 10),
        "bits": [v for v in _floats("bits", 40) if math.isfinite(v)][:10],
        "edges": list(BOUNDARIES),
        "odd": [*NON_FINITE, 0.5],
    }
    for rid, scores in lists.items():
        n = len(scores)
        chances = [min(abs(s), 1.0) for s in scores] if rid in ("edges", "fast-explored") else None
        shown_ids = [f"{rid}{j}" for j in range(n)]
        log.record(decision(rid, unit="u", unit_kind="user", route="recommendations", release="r",
                            item_ids=shown_ids, scores=scores, sources=[("als",)] * n,
                            propensities=chances))  # fmt: skip
    assert log.flush() == len(lists)
    assert sorted(slow) == ["bits0", "edges0", "odd0", "ranked0"]  # by their first ids
    shown = store.scan_decisions()
    for rid, scores in lists.items():
        got = store.get_decision(rid)
        assert got is not None and _bits(got.scores) == _bits(scores), rid
        mine = shown[shown["recommendation_id"] == rid].sort_values("position")
        assert _bits(mine["score"].tolist()) == _bits(scores), rid
        if rid != "odd":  # its first score, NaN, is stored as the string "nan"
            assert (
                _score_type(url, rid)
                in NUMBER["sqlite" if url.startswith("sqlite") else "postgres"]
            )
    for rid in ("edges", "fast-explored"):
        got = store.get_decision(rid)
        assert got is not None
        assert _bits(got.propensities) == _bits([min(abs(s), 1.0) for s in lists[rid]])
