"""Reading a window of the decision log as a server's background watches do (``scan_decisions``,
``decisions.window``) without stalling its event loop: the packed items are parsed a bounded
chunk of lists per ``json.loads`` (one C call that holds the GIL), and no cyclic collection walks
the read's hundreds of thousands of fresh containers (BENCHMARKS §131). Both are stated as what
happens during the read, not as times: every shown item still comes back as recorded, checked
against the lists built here, across chunk boundaries and with empty lists on them."""

from __future__ import annotations

import gc
import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from recsmith.decisions import rows
from recsmith.decisions.record import Decision, decision
from recsmith.store.sqlite import SQLiteStore

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _lists(n: int) -> list[Decision]:
    """``n`` lists served a millisecond apart, 0-12 items each (empty ones among them, on each
    chunk's first and last row too), ids and scores that say which list and place they are."""
    out = []
    for i in range(n):
        on_edge = i % rows.PARSE_CHUNK in (0, rows.PARSE_CHUNK - 1)
        size = 0 if on_edge or i % 97 == 5 else i % 13
        out.append(
            decision(
                f"r-{i:05d}",
                unit=f"u{i % 50}",
                unit_kind="user",
                route="recommendations",
                release="rel-1",
                item_ids=[f"i{i}-{p}" for p in range(size)],
                scores=[i + p / 16 for p in range(size)],
                sources=[("als",) if p % 2 else ("als", "cooc") for p in range(size)],
                served_at=T0 + timedelta(milliseconds=i),
            )
        )
    return out


@pytest.fixture
def stored(tmp_path: Path) -> tuple[SQLiteStore, list[Decision]]:
    store = SQLiteStore(tmp_path / "store.sqlite")
    lists = _lists(2 * rows.PARSE_CHUNK + 345)
    store.append_decisions(lists)
    return store, lists


Row = tuple[str, Any, Any, Any, Any, Any]


def _expected(lists: list[Decision]) -> list[Row]:
    """(list, unit, time, position, item, score) per shown item; an empty list's one row has
    no item."""
    out: list[Row] = []
    for d in lists:
        head = (d.recommendation_id, d.unit, d.served_at)
        if not d.item_ids:
            out.append((*head, None, None, None))
        for p, (item, score) in enumerate(zip(d.item_ids, d.scores, strict=True), start=1):
            out.append((*head, p, item, score))
    return out


def _read(frame: pd.DataFrame) -> list[Row]:
    """``_expected``'s rows as the frame holds them (its missing values as None)."""
    columns = ("recommendation_id", "unit", "served_at", "position", "item_id", "score")
    values = zip(*(frame[c].tolist() for c in columns), strict=True)
    return [tuple(None if pd.isna(v) else v for v in row) for row in values]  # type: ignore[misc]


def test_a_window_is_parsed_a_bounded_chunk_of_lists_per_json_call(
    stored: tuple[SQLiteStore, list[Decision]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, lists = stored
    parsed: list[int] = []

    def loads(text: str) -> Any:
        out = json.loads(text)
        parsed.append(len(out))
        return out

    monkeypatch.setattr(rows, "json", SimpleNamespace(loads=loads, dumps=json.dumps))
    frame = store.scan_decisions(T0)
    assert max(parsed) <= rows.PARSE_CHUNK
    assert sum(parsed) == len(lists)
    assert _read(frame) == _expected(lists)


def test_no_cyclic_collection_runs_while_a_windows_rows_become_its_frame(
    stored: tuple[SQLiteStore, list[Decision]], tmp_path: Path
) -> None:
    """The rows as ``scan_decisions`` fetches them (one tuple a list: its few collections stay)
    made into the frame (the parsed lists, the columns) with the collector paused, and the parsed
    lists freed before it is back on: the young pass that the first allocation after the pause
    runs must not find them (it walked them all with the GIL held, ~90 ms at a server's size)."""
    _, lists = stored
    with sqlite3.connect(tmp_path / "store.sqlite") as conn:
        found = conn.execute(rows.SCAN_SQL.format(p="?"), (0, 2**62)).fetchall()
    collections: list[tuple[int, int]] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append((info["generation"], gc.get_count()[0]))

    gc.collect()  # counts of this test's own: a pass after the pause is then a young one
    gc.callbacks.append(seen)
    try:
        frame = rows.shown_frame(found)
    finally:
        gc.callbacks.remove(seen)
    # the parsed lists are at least five containers a list (itself and its four columns); what
    # the frame keeps is a few thousand, whatever the window's size
    parsed = 5 * len(found)
    assert len(collections) <= 1  # the old read ran one every 700 fresh containers
    assert all(gen == 0 and young < parsed // 2 for gen, young in collections), collections
    assert gc.get_count()[0] < parsed // 2
    assert gc.isenabled()  # on again after the read
    assert _read(frame) == _expected(lists)


def _list(i: int, size: int, *, full: bool = False, odd: bool = False) -> Decision:
    """List ``i`` with ``size`` items; ``full``: every optional field set; ``odd``: ids with
    non-ASCII, quotes, backslashes and a line separator in them, and no unit."""
    mark = 'ü😀\u2028"\\' if odd else ""
    extra: dict[str, Any] = {}
    if full:
        extra = dict(
            placement="home",
            experiment="exp",
            variant="B",
            latency_ms=1.5 * i,
            assignment_propensity=0.5,
            page_view=f"pv{i}",
            arm="a1",
            arm_propensity=0.25,
            arm_context=[0.1, 0.2],
            propensities=[0.5 / (p + 1) for p in range(size)],
        )
    return decision(
        f"r-{i:05d}{mark}",
        unit=None if odd else f"u{i}",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=[f"i{i}-{p}{mark}" for p in range(size)],
        scores=[i + p / 8 for p in range(size)],
        sources=[("als", "co|oc") if p % 2 else () for p in range(size)],
        served_at=T0 + timedelta(milliseconds=i),
        **extra,
    )


WINDOWS: dict[str, list[Decision]] = {
    "empty": [],
    "one list with no item": [_list(0, 0)],
    "lists with no item": [_list(i, 0, full=i % 2 == 0) for i in range(30)],
    "one full list": [_list(0, 3, full=True)],
    "mixed": [_list(i, i % 6, full=i % 3 == 0, odd=i % 5 == 0) for i in range(200)],
    "non-finite scores and propensities": [
        decision(
            "r-nonfinite",
            unit="u",
            unit_kind="user",
            route="recommendations",
            release="rel-1",
            item_ids=["a", "b", "c"],
            scores=[math.nan, math.inf, -math.inf],
            sources=[(), (), ()],
            propensities=[math.inf, 0.3, -math.inf],
            served_at=T0,
        )
    ],
    "past a chunk's edge": [_list(i, i % 4, full=i % 2 == 0) for i in range(rows.PARSE_CHUNK + 1)],
}

#: The frame's types, stated here: text columns are pandas' ``str`` where a value is present
#: (``object`` where every value is missing), numbers float64, positions nullable integers.
TEXT = (
    "recommendation_id", "unit", "unit_kind", "route", "placement", "release", "experiment",
    "variant", "page_view", "arm", "arm_context", "item_id", "sources",
)  # fmt: skip
FLOAT = ("latency_ms", "assignment_propensity", "arm_propensity", "score", "propensity")


def _oracle(lists: list[Decision]) -> pd.DataFrame:
    """The frame ``scan_decisions`` must return, built from the lists row by row (one row per
    shown item, one with no item for an empty list), each column's type set explicitly."""
    records = []
    for d in lists:
        head = {
            "recommendation_id": d.recommendation_id,
            "served_at": d.served_at,
            "unit": d.unit,
            "unit_kind": d.unit_kind,
            "route": d.route,
            "placement": d.placement,
            "release": d.release,
            "experiment": d.experiment,
            "variant": d.variant,
            "latency_ms": d.latency_ms,
            "assignment_propensity": d.assignment_propensity,
            "page_view": d.page_view,
            "arm": d.arm,
            "arm_propensity": d.arm_propensity,
            "arm_context": None if d.arm_context is None else json.dumps(list(d.arm_context)),
        }
        shown = zip(d.item_ids, d.scores, d.sources, d.propensities, strict=True)
        items = [
            {"position": p, "item_id": i, "score": s, "sources": "|".join(f), "propensity": q}
            for p, (i, s, f, q) in enumerate(shown, start=1)
        ]
        for item in items or [dict.fromkeys(("position", "item_id", "score", "sources"))]:
            records.append({**head, "propensity": None, **item})
    columns: dict[str, Any] = {}
    for name in rows.SHOWN_COLUMNS:
        values = [r[name] for r in records]
        if name in TEXT:
            present = any(v is not None for v in values)
            columns[name] = pd.Series(values, dtype="str" if present else object)
        elif name in FLOAT:
            columns[name] = pd.Series([math.nan if v is None else v for v in values], dtype=float)
        elif name == "position":
            columns[name] = pd.Series([pd.NA if v is None else v for v in values], dtype="Int64")
        else:
            columns[name] = pd.Series(pd.to_datetime(values, utc=True), dtype="datetime64[ns, UTC]")
    return pd.DataFrame(columns)


@pytest.mark.parametrize("window", list(WINDOWS))
def test_a_windows_frame_is_the_lists_row_by_row_types_included(
    window: str, tmp_path: Path
) -> None:
    lists = WINDOWS[window]
    store = SQLiteStore(tmp_path / "store.sqlite")
    if lists:
        store.append_decisions(lists)
    frame = store.scan_decisions(T0 - timedelta(days=1))
    assert isinstance(frame.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(frame, _oracle(lists), check_exact=True)
