"""What the decision log's writer leaves in ``decisions`` (a list is one row, its items packed),
on SQLite and PostgreSQL: every column of every row against rows written out by hand here (not
built by ``decisions.rows``), for lists of 0, 1, 10 and 57 items, a list without a unit, an
exploring list's propensities, a contextual arm, and a retried batch whose first copy wins. The
readers then give back each ``Decision`` as recorded, every float to the bit, and the SQL
unpacking (``shown_in``, ``shown_to``, ``shows_of``) every item id and position."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from recsmith.decisions.record import Decision, decision
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
T0_US = 1_772_366_400_123_456
ALS, MIXED = ("als",), ("als", "cooc")


@pytest.fixture(params=BACKENDS)
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    with open_backend(request.param, tmp_path) as found:
        yield found


def _lists() -> list[Decision]:
    big = [f"item-{n}" for n in range(57)]
    return [
        decision(
            "r-ten",
            unit="u1",
            unit_kind="user",
            route="recommendations",
            release="rel-1",
            item_ids=[f"i{n}" for n in range(10)],
            scores=[10.0 - n for n in range(10)],
            sources=[ALS if n % 3 else MIXED for n in range(10)],
            served_at=T0,
            latency_ms=3.25,
            placement="home",
        ),
        decision(
            "r-empty",
            unit="u2",
            unit_kind="user",
            route="recommendations",
            release="rel-1",
            item_ids=[],
            scores=[],
            sources=[],
            served_at=T0 + timedelta(seconds=1),
        ),
        decision(
            "r-one",
            unit=None,
            unit_kind="none",
            route="popular",
            release="rel-1",
            item_ids=["solo"],
            scores=[0.5],
            sources=[("popular",)],
            served_at=T0 + timedelta(seconds=2),
        ),
        decision(
            "r-big",
            unit="visitor-9",
            unit_kind="session",
            route="recommendations",
            release="rel-2",
            item_ids=big,
            scores=[1.0 / (n + 1) for n in range(57)],
            sources=[MIXED if n % 2 else ("explore", "als") for n in range(57)],
            served_at=T0 + timedelta(seconds=3),
            propensities=[0.25 if n % 2 else 0.75 for n in range(57)],
            experiment="exp",
            variant="b",
            assignment_propensity=0.5,
            arm="fresh",
            arm_propensity=0.2,
            arm_context=[1.0, 0.0, 0.5],
            page_view="pv-1",
        ),
    ]


def _packed(ids: list[str], scores: list[str], sources: list[str], chances: list[str]) -> str:
    """``items`` as stored: ``[ids, scores, source lists, propensities]``, no spaces; each
    argument the JSON text of its elements."""
    return f"[[{','.join(ids)}],[{','.join(scores)}],[{','.join(sources)}],[{','.join(chances)}]]"


def _expected_items() -> dict[str, str]:
    """Each list's ``items`` column written out by hand."""
    return {
        "r-ten": _packed(
            [f'"i{n}"' for n in range(10)],
            [f"{10 - n}.0" for n in range(10)],
            ['["als"]' if n % 3 else '["als","cooc"]' for n in range(10)],
            ["1.0"] * 10,
        ),
        "r-empty": "[[],[],[],[]]",
        "r-one": '[["solo"],[0.5],[["popular"]],[1.0]]',
        "r-big": _packed(
            [f'"item-{n}"' for n in range(57)],
            [repr(1.0 / (n + 1)) for n in range(57)],
            ['["als","cooc"]' if n % 2 else '["explore","als"]' for n in range(57)],
            ["0.25" if n % 2 else "0.75" for n in range(57)],
        ),
    }


def _expected_heads() -> list[tuple[Any, ...]]:
    """``decisions`` written out, every column (``rows.DECISION_COLUMNS``), in id order."""
    nothing = (None,) * 6  # latency_ms .. arm_context
    heads = [
        (
            "r-big",
            T0_US + 3_000_000,
            "visitor-9",
            "session",
            "recommendations",
            None,
            "rel-2",
            "exp",
            "b",
            None,
            0.5,
            "pv-1",
            "fresh",
            0.2,
            "[1.0, 0.0, 0.5]",
            57,
        ),
        (
            "r-empty",
            T0_US + 1000000,
            "u2",
            "user",
            "recommendations",
            None,
            "rel-1",
            None,
            None,
            *nothing,
            0,
        ),
        ("r-one", T0_US + 2000000, None, "none", "popular", None, "rel-1", None, None, *nothing, 1),
        (
            "r-ten",
            T0_US,
            "u1",
            "user",
            "recommendations",
            "home",
            "rel-1",
            None,
            None,
            3.25,
            *nothing[1:],
            10,
        ),
    ]
    items = _expected_items()
    return [(*head, items[head[0]]) for head in heads]


HEAD_SQL = (
    "SELECT recommendation_id, served_at, unit, unit_kind, route, placement, release, "
    "experiment, variant, latency_ms, assignment_propensity, page_view, arm, arm_propensity, "
    "arm_context, size, items FROM decisions ORDER BY recommendation_id"
)
#: Tables a store holds: none of one row per shown item any more.
TABLES_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgres": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
}


def _table(url: str) -> list[tuple[Any, ...]]:
    """``decisions`` read straight from the database, outside the store; and no
    ``decision_items`` beside it."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            types = conn.execute("SELECT DISTINCT typeof(served_at) FROM decisions").fetchall()
            assert set(types) <= {("integer",)}
            assert "decision_items" not in {r[0] for r in conn.execute(TABLES_SQL["sqlite"])}
            return conn.execute(HEAD_SQL).fetchall()
        finally:
            conn.close()
    import psycopg

    base, schema = url.split("?schema=")
    with psycopg.connect(base) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        assert "decision_items" not in {r[0] for r in conn.execute(TABLES_SQL["postgres"])}
        return [tuple(r) for r in conn.execute(HEAD_SQL).fetchall()]


def test_the_tables_hold_every_list_as_written_out_by_hand(
    opened: tuple[EventStore, str],
) -> None:
    store, url = opened
    lists = _lists()
    assert store.append_decisions(lists[:2]) == 2
    # a retried batch: its first two lists are stored already, with other items now (a
    # different release's copy would be a bug upstream; the stored copy must not change)
    again = [
        decision(
            "r-ten",
            unit="u1",
            unit_kind="user",
            route="recommendations",
            release="rel-9",
            item_ids=["other"],
            scores=[9.0],
            sources=[ALS],
            served_at=T0,
        ),
        *lists[1:],
    ]
    # the store's contract: how many lists were new (all but the two stored already)
    assert store.append_decisions(again) == len(lists) - 2
    assert _table(url) == _expected_heads()
    for d in lists:
        assert store.get_decision(d.recommendation_id) == d
    assert len(store.scan_decisions(T0, T0 + timedelta(minutes=1))) == 10 + 1 + 1 + 57
    # the SQL unpacking: every item id at its position, none of the empty list's
    ten, big = [f"i{n}" for n in range(10)], [f"item-{n}" for n in range(57)]
    found = store.shown_in(["r-ten", "r-empty", "r-big"]).sort_values(["served_at", "position"])
    assert found["item_id"].tolist() == ten + big
    assert found["position"].tolist() == list(range(1, 11)) + list(range(1, 58))
    window = store.shown_to(["u1", "u2"], T0_US, T0_US + 10_000_000)
    assert sorted(zip(window["position"], window["item_id"], strict=True)) == sorted(
        zip(range(1, 11), ten, strict=True)
    )
    shows = store.shows_of("visitor-9", T0_US, T0_US + 3_000_000)
    assert sorted(shows) == sorted(("r-big", i, T0_US + 3_000_000, "pv-1") for i in big)
    assert store.shows_of("visitor-9", T0_US, T0_US + 2_999_999) == []


#: Floats whose shortest text is long or odd, and ids JSON must escape or keep as they are.
AWKWARD_SCORES = (0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308, -0.0, 1e22, 2.0**-1074 * 3)
AWKWARD_IDS = ('quo"te', "back\\slash", "é-ü-日本", "tab\there", "new\nline", "emoji-🎉", "  ")


def test_every_float_and_id_comes_back_exactly(opened: tuple[EventStore, str]) -> None:
    store, _ = opened
    n = len(AWKWARD_IDS)
    d = decision(
        "r-awkward",
        unit="ü-user",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=list(AWKWARD_IDS),
        scores=list(AWKWARD_SCORES),
        sources=[("als", 'we"ird|src')] * n,
        served_at=T0,
        propensities=[1 / 7] * n,
    )
    store.append_decisions([d])
    back = store.get_decision("r-awkward")
    assert back == d
    assert [s.hex() for s in back.scores] == [s.hex() for s in AWKWARD_SCORES]  # -0.0 too
    frame = store.scan_decisions(T0, T0 + timedelta(seconds=1))
    assert [s.hex() for s in frame["score"]] == [s.hex() for s in AWKWARD_SCORES]
    assert frame["item_id"].tolist() == list(AWKWARD_IDS)
    assert frame["sources"].tolist() == ['als|we"ird|src'] * n
    assert store.shown_in(["r-awkward"])["item_id"].tolist() == list(AWKWARD_IDS)
    shows = store.shows_of("ü-user", T0_US, T0_US)
    assert sorted(r[1] for r in shows) == sorted(AWKWARD_IDS)
    assert store.person_decisions("ü-user") == [d]


def test_nan_and_infinite_scores_are_stored_and_read_back_by_every_reader(
    opened: tuple[EventStore, str],
) -> None:
    """JSON has no NaN or infinity: they are packed as the strings "nan", "inf", "-inf", which
    both databases' JSON parsers take (``shown_in`` unpacks the ids in SQL) and the readers
    turn back into the floats: ±inf as the old layout gave them back, NaN as NaN."""
    store, url = opened
    ok = _lists()[1]
    odd = decision(
        **{
            **_fields(_lists()[0]),
            "recommendation_id": "r-odd",
            "item_ids": ("a", "b", "c", "d"),
            "scores": (1.0, float("inf"), float("-inf"), float("nan")),
            "sources": (ALS,) * 4,
        }
    )
    assert store.append_decisions([ok, odd]) == 2
    heads = {row[0]: row for row in _table(url)}
    assert set(heads) == {"r-empty", "r-odd"}
    assert heads["r-odd"][-2:] == (
        4,
        '[["a","b","c","d"],[1.0,"inf","-inf","nan"],[["als"],["als"],["als"],["als"]],'
        "[1.0,1.0,1.0,1.0]]",
    )
    got = store.get_decision("r-odd")
    assert got is not None and got.scores[:3] == (1.0, math.inf, -math.inf)
    assert math.isnan(got.scores[3]) and got.item_ids == odd.item_ids
    frame = store.scan_decisions(T0 - timedelta(seconds=1), T0 + timedelta(seconds=1))
    scores = frame.loc[frame["recommendation_id"] == "r-odd", "score"].tolist()
    assert scores[:3] == [1.0, math.inf, -math.inf] and math.isnan(scores[3])
    assert store.shown_in(["r-odd"])["item_id"].tolist() == ["a", "b", "c", "d"]
    assert sorted(r[1] for r in store.shows_of("u1", T0_US, T0_US)) == ["a", "b", "c", "d"]


def test_a_nul_in_an_item_id_is_refused_by_name(opened: tuple[EventStore, str]) -> None:
    """PostgreSQL would keep it in the packed text and then fail every unpacking of it."""
    store, url = opened
    bad = decision(
        **{**_fields(_lists()[0]), "item_ids": ("i0", "i\x001", *_lists()[0].item_ids[2:])}
    )
    assert store.count_decisions() == 0  # PostgreSQL's tables exist from the first call
    with pytest.raises(ValueError, match="r-ten: an item_id holds a NUL"):
        store.append_decisions([_lists()[1], bad])
    assert _table(url) == []


def test_lists_whose_lengths_disagree_are_refused_even_when_the_batch_totals_agree(
    opened: tuple[EventStore, str],
) -> None:
    store, url = opened
    short, empty, long = _lists()[:3]
    store.append_decisions([empty])
    # one score short on one list, one too many on the next: ten plus one scores for ten plus
    # one items, which a batch-wide count would take, shifted by one from the second list on
    short = decision(**{**_fields(short), "scores": short.scores[:-1]})
    long = decision(**{**_fields(long), "scores": (*long.scores, 7.0)})
    with pytest.raises(ValueError, match="r-ten"):
        store.append_decisions([short, long])
    assert _table(url) == [_expected_heads()[1]]


def _fields(d: Decision) -> dict[str, Any]:
    """``decision``'s arguments for ``d``."""
    names = ("unit", "unit_kind", "route", "release", "item_ids", "scores", "sources")
    return {"recommendation_id": d.recommendation_id, "served_at": d.served_at} | {
        n: getattr(d, n) for n in names
    }


def test_an_export_lists_a_units_lists_by_time_then_id(opened: tuple[EventStore, str]) -> None:
    """Two lists served in the same microsecond, stored in the reverse of their ids' order."""
    store, _ = opened
    first = _lists()[0]
    later = [decision(**{**_fields(first), "recommendation_id": f"r-{c}"}) for c in "zba"]
    store.append_decisions([later[0]])
    store.append_decisions(later[1:])
    assert [d.recommendation_id for d in store.person_decisions("u1")] == ["r-a", "r-b", "r-z"]
