"""What the decision log's writer leaves in ``decisions`` and ``decision_items``, table by table,
on SQLite and PostgreSQL: every column of every row against rows written out by hand here (not
built by ``decisions.rows``), for lists of 0, 1, 10 and 57 items (more than one multirow
statement), a list without a unit, an exploring list's propensities, a contextual arm, and a
retried batch whose first copy wins. The readers then give back each ``Decision`` as recorded."""

from __future__ import annotations

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


def _expected_items() -> list[tuple[Any, ...]]:
    """``decision_items`` written out: (recommendation_id, position, item_id, score, sources,
    propensity, unit, served_at µs), in key order."""
    ten = [
        ("r-ten", n + 1, f"i{n}", 10.0 - n, '["als"]' if n % 3 else '["als", "cooc"]', 1.0, "u1")
        for n in range(10)
    ]
    big = [
        (
            "r-big",
            n + 1,
            f"item-{n}",
            1.0 / (n + 1),
            '["als", "cooc"]' if n % 2 else '["explore", "als"]',
            0.25 if n % 2 else 0.75,
            "visitor-9",
        )
        for n in range(57)
    ]
    one = [("r-one", 1, "solo", 0.5, '["popular"]', 1.0, None)]
    return sorted(
        [(*r, T0_US) for r in ten]
        + [(*r, T0_US + 3_000_000) for r in big]
        + [(*r, T0_US + 2_000_000) for r in one]
    )


def _expected_heads() -> list[tuple[Any, ...]]:
    """``decisions`` written out, every column (``rows.DECISION_COLUMNS``), in id order."""
    nothing = (None,) * 6  # latency_ms .. arm_context
    return [
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


HEAD_SQL = (
    "SELECT recommendation_id, served_at, unit, unit_kind, route, placement, release, "
    "experiment, variant, latency_ms, assignment_propensity, page_view, arm, arm_propensity, "
    "arm_context, size FROM decisions ORDER BY recommendation_id"
)
ITEM_SQL = (
    "SELECT recommendation_id, position, item_id, score, sources, propensity, unit, served_at "
    "FROM decision_items ORDER BY recommendation_id, position"
)


def _tables(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Both tables read straight from the database, outside the store."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            types = conn.execute(
                "SELECT DISTINCT typeof(score), typeof(propensity), typeof(position), "
                "typeof(served_at) FROM decision_items"
            ).fetchall()
            assert set(types) <= {("real", "real", "integer", "integer")}
            return conn.execute(HEAD_SQL).fetchall(), conn.execute(ITEM_SQL).fetchall()
        finally:
            conn.close()
    import psycopg

    base, schema = url.split("?schema=")
    with psycopg.connect(base) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        heads = [tuple(r) for r in conn.execute(HEAD_SQL).fetchall()]
        return heads, [tuple(r) for r in conn.execute(ITEM_SQL).fetchall()]


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
    heads, items = _tables(url)
    assert heads == _expected_heads()
    assert items == _expected_items()
    for d in lists:
        assert store.get_decision(d.recommendation_id) == d
    assert len(store.scan_decisions(T0, T0 + timedelta(minutes=1))) == 10 + 1 + 1 + 57


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
    assert _tables(url) == ([_expected_heads()[1]], [])


def _fields(d: Decision) -> dict[str, Any]:
    """``decision``'s arguments for ``d``."""
    names = ("unit", "unit_kind", "route", "release", "item_ids", "scores", "sources")
    return {"recommendation_id": d.recommendation_id, "served_at": d.served_at} | {
        n: getattr(d, n) for n in names
    }
