"""The decision writer's batches as the server makes them (issue #19: its cheaper step): SQLite
stores whole chunks of ``_DECISIONS_PER_INSERT`` lists a statement (fewer where the connection's
SQLite variable limit is lower) and the rest one by one, and
a deterministic list's propensities are packed from text made once a length. What a store holds
must not change: here every column of every row, in insertion order, against rows written out by
the standard library (``json.dumps``), for batches on both sides of a chunk's edge, with repeated
ids inside a chunk, across chunks and already stored; and the packed text against ``json.dumps``
for every kind of propensities a caller can hand over."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recsmith.decisions import rows
from recsmith.decisions.record import Decision, decision
from recsmith.decisions.rows import header_rows, pack
from recsmith.store.sqlite import _DECISIONS_PER_INSERT, SQLiteStore

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T0_US = 1_772_366_400_123_456
SOURCES = (("als",), ("als", "cooc"), ("popular",))
COLUMNS = (
    "recommendation_id, served_at, unit, unit_kind, route, placement, release, experiment, "
    "variant, latency_ms, assignment_propensity, page_view, arm, arm_propensity, arm_context, "
    "size, items"
)


def _list(rid: str, k: int) -> Decision:
    """The k-th list: k % 4 items (so empty lists too), named by ``rid``."""
    n = k % 4
    return decision(
        rid,
        unit=f"u{k}",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=[f"i{k}-{j}" for j in range(n)],
        scores=[k / (j + 3) for j in range(n)],
        sources=[SOURCES[(k + j) % 3] for j in range(n)],
        served_at=T0 + timedelta(microseconds=k),
        latency_ms=float(k),
    )


def _row(rid: str, k: int) -> tuple[Any, ...]:
    """``_list(rid, k)``'s row written out: items as ``json.dumps`` packs them."""
    n = k % 4
    items = [
        [f"i{k}-{j}" for j in range(n)],
        [k / (j + 3) for j in range(n)],
        [list(SOURCES[(k + j) % 3]) for j in range(n)],
        [1.0] * n,
    ]
    text = json.dumps(items, separators=(",", ":"), ensure_ascii=False)
    nothing = (None,) * 7  # experiment .. arm_context but latency_ms
    return (rid, T0_US + k, f"u{k}", "user", "recommendations", None, "rel-1", *nothing[:2],
            float(k), *nothing[2:], n, text)  # fmt: skip


def _stored(path: Path) -> list[tuple[Any, ...]]:
    """Every row in the order it was inserted (rowid), read outside the store."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT {COLUMNS} FROM decisions ORDER BY rowid").fetchall()
    finally:
        conn.close()


#: SQLite before 3.32 (e.g. Ubuntu 20.04's 3.31.1, which has the upsert the store needs) allows
#: 999 variables a statement: 58 lists of 17 columns, not 64.
OLD_LIMIT = 999
OLD_CHUNK = 999 // 17


@pytest.mark.parametrize(
    ("limit", "size"),
    [(None, 1), (None, _DECISIONS_PER_INSERT - 1), (None, _DECISIONS_PER_INSERT),
     (None, 2 * _DECISIONS_PER_INSERT + 3), (OLD_LIMIT, OLD_CHUNK), (OLD_LIMIT, OLD_CHUNK + 1),
     (OLD_LIMIT, _DECISIONS_PER_INSERT), (OLD_LIMIT, 2 * _DECISIONS_PER_INSERT + 3)],
)  # fmt: skip
def test_a_batch_stores_each_new_list_once_in_order_its_first_copy_winning(
    tmp_path: Path, limit: int | None, size: int
) -> None:
    store = SQLiteStore(tmp_path / "events.db")
    if limit is not None:  # this thread's connection, the one append_decisions writes on
        store._conn().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
        assert store._conn().getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) == limit
    store.append_decisions([_list("r-old", 0)])
    ids = [f"r{k:04d}" for k in range(size)]
    if size > 6:
        ids[5] = ids[4]  # repeated inside the first chunk
        ids[-1] = ids[1]  # repeated from the first chunk in the last (or the same) one
        ids[2] = "r-old"  # stored by an earlier batch
    batch = [_list(rid, k) for k, rid in enumerate(ids)]
    new = store.append_decisions(batch)
    first: dict[str, int] = {"r-old": -1}
    for k, rid in enumerate(ids):
        first.setdefault(rid, k)
    expected = [_row("r-old", 0)] + [_row(r, k) for r, k in first.items() if k >= 0]
    assert new == len(expected) - 1
    assert _stored(tmp_path / "events.db") == expected
    assert store.append_decisions(batch) == 0  # a retried batch adds nothing


def _popular(
    item_ids: list[str], scores: list[float], sources: list[tuple[str, ...]], chances: Any = None
) -> Decision:
    return decision(
        "r",
        unit=None,
        unit_kind="none",
        route="popular",
        release="rel-1",
        item_ids=item_ids,
        scores=scores,
        sources=sources,
        propensities=chances,
    )


@pytest.mark.parametrize(
    "propensities",
    [None, [1.0, 1.0, 1.0], (1.0, 1.0, 1.0), [1, 1, 1], [0.5, 1.0, 0.25]],
    ids=["deterministic", "list-of-ones", "own-tuple-of-ones", "integer-ones", "exploring"],
)
def test_packed_items_are_what_the_standard_encoder_writes(propensities: Any) -> None:
    d = _popular(
        ["a", 'é"\\', "🙂"],
        [0.1 + 0.2, 5e-324, -0.0],
        [("als",), (), ("als", "cooc")],
        propensities,
    )
    chances = [1.0, 1.0, 1.0] if propensities is None else [float(p) for p in propensities]
    expected = [["a", "é\"\\", "🙂"], [0.1 + 0.2, 5e-324, -0.0], [["als"], [], ["als", "cooc"]],
                chances]  # fmt: skip
    text = json.dumps(expected, separators=(",", ":"), ensure_ascii=False)
    assert header_rows([d])[0][-1] == text
    assert pack(d.item_ids, d.scores, d.sources, d.propensities) == text


@pytest.mark.parametrize("n", [0, 1, 1024, 1025, 3000])
def test_a_deterministic_list_of_any_length_packs_its_ones(n: int) -> None:
    d = _popular([str(j) for j in range(n)], [float(j) for j in range(n)], [("p",)] * n)
    items = [[str(j) for j in range(n)], [float(j) for j in range(n)], [["p"]] * n, [1.0] * n]
    assert header_rows([d])[0][-1] == json.dumps(items, separators=(",", ":"))


def test_deterministic_lists_of_one_length_share_their_propensities() -> None:
    """What lets the writer pack them from text made once (``rows.pack``)."""
    assert _list("a", 3).propensities is _list("b", 7).propensities == (1.0, 1.0, 1.0)


def test_a_batch_with_two_bad_lists_names_the_first_whatever_its_fault() -> None:
    good, a, b = _list("good", 3), _list("a", 2), _list("b", 1)
    nul = decision(**{**_fields(a), "item_ids": ("x", "y\x00")})
    short = decision(**{**_fields(b), "scores": ()})
    with pytest.raises(ValueError, match="decision a: an item_id holds a NUL"):
        header_rows([good, nul, short])
    with pytest.raises(ValueError, match="decision b: 1 items but 0 scores"):
        header_rows([good, short, nul])


@pytest.mark.parametrize("bad", [0, 1, 2])
@pytest.mark.parametrize("fault", ["nul", "short"])
def test_a_batch_with_one_bad_list_is_refused_naming_it(fault: str, bad: int) -> None:
    """Either fault alone refuses the whole batch (each half of ``header_rows``' batch check)."""
    batch = [_list(f"r{k}", k + 1) for k in range(3)]
    d = batch[bad]
    if fault == "nul":
        batch[bad] = decision(**{**_fields(d), "item_ids": (*d.item_ids[:-1], "x\x00")})
        reason = "an item_id holds a NUL"
    else:
        batch[bad] = decision(**{**_fields(d), "sources": d.sources[1:]})
        reason = f"{bad + 1} items but {bad + 1} scores, {bad} source lists"
    with pytest.raises(ValueError, match=f"decision r{bad}: {reason}"):
        header_rows(batch)


_PACKED = [
    (["a", 'é"\\', "🙂"], [0.1 + 0.2, 5e-324, -0.0], [("als",), (), ("als", "cooc")], (1.0,) * 3),
    (["a", "b"], [1.5, 2.0], [("p",), ()], [0.5, 1.0]),
    (["a", "b"], [float("nan"), float("-inf")], [("p",), ()], [1.0, float("inf")]),
    ([], [], [], []),
]


def _standard(ids: Any, scores: Any, sources: Any, chances: Any) -> str:
    """The packed text written by ``json.dumps``, non-finite floats as their names."""
    named = [[x if abs(x) < float("inf") else repr(x) for x in v] for v in (scores, chances)]
    items = [list(ids), named[0], [list(s) for s in sources], named[1]]
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def _no_accelerator(*_args: Any) -> Any:
    raise TypeError("not CPython's c_make_encoder")


@pytest.mark.parametrize("make", [None, _no_accelerator], ids=["missing", "unbuildable"])
def test_without_the_c_encoder_items_pack_to_the_same_text(
    monkeypatch: pytest.MonkeyPatch, make: Any
) -> None:
    monkeypatch.setattr(rows, "_encode_chunks", rows.chunk_encoder(make))
    for ids, scores, sources, chances in _PACKED:
        assert rows.pack(ids, scores, sources, chances) == _standard(ids, scores, sources, chances)


def test_recsmith_imports_and_packs_on_a_python_without_the_json_accelerator() -> None:
    """``json.encoder.c_make_encoder`` is None where ``_json`` is missing (blocked here)."""
    code = (
        "import sys; sys.modules['_json'] = None\n"
        "import json.encoder; assert json.encoder.c_make_encoder is None\n"
        "from recsmith.decisions.rows import pack\n"
        "print(ascii(pack(['a', 'é'], [0.5, float('nan')], [('als',), ()], (1.0, 1.0))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = _standard(["a", "é"], [0.5, float("nan")], [("als",), ()], [1.0, 1.0])
    assert done.stdout == ascii(expected) + "\n"


def _fields(d: Decision) -> dict[str, Any]:
    return {
        "recommendation_id": d.recommendation_id,
        "unit": d.unit,
        "unit_kind": d.unit_kind,
        "route": d.route,
        "release": d.release,
        "item_ids": d.item_ids,
        "scores": d.scores,
        "sources": d.sources,
        "served_at": d.served_at,
    }
