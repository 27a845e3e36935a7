"""The decision writer's batches as the server makes them (issue #19: its cheaper step): SQLite
stores whole chunks of ``_DECISIONS_PER_INSERT`` lists a statement and the rest one by one, and
a deterministic list's propensities are packed from text made once a length. What a store holds
must not change: here every column of every row, in insertion order, against rows written out by
the standard library (``json.dumps``), for batches on both sides of a chunk's edge, with repeated
ids inside a chunk, across chunks and already stored; and the packed text against ``json.dumps``
for every kind of propensities a caller can hand over."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

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


@pytest.mark.parametrize(
    "size", [1, _DECISIONS_PER_INSERT - 1, _DECISIONS_PER_INSERT, 2 * _DECISIONS_PER_INSERT + 3]
)
def test_a_batch_stores_each_new_list_once_in_order_its_first_copy_winning(
    tmp_path: Path, size: int
) -> None:
    store = SQLiteStore(tmp_path / "events.db")
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
    chances = [1.0, 1.0, 1.0] if propensities is None else list(propensities)
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
