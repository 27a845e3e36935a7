"""Attribution counts exactly what was sent: a hand-built scenario with known clicks, carts and
purchases, explicit ids and the window rule, on SQLite and PostgreSQL. Outcomes per unit and the
KPIs are checked against values worked out by hand from the same scenario."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from recsmith.config import DecisionSettings, EventSettings
from recsmith.decisions.attribution import Attributor
from recsmith.decisions.kpis import kpis
from recsmith.decisions.log import DecisionLog
from recsmith.decisions.outcomes import PER_UNIT_COLUMNS, per_unit
from recsmith.decisions.record import Decision, decision
from recsmith.events.schema import IngestResult
from recsmith.store.base import EventStore
from recsmith.store.ingest import ingest_events

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SETTINGS = DecisionSettings()  # 24 h window; click, add_to_cart, purchase


def shown(
    rid: str, unit: str | None, items: list[str], hours: float, variant: str | None
) -> Decision:
    return decision(
        rid,
        unit=unit,
        unit_kind="user" if unit else "none",
        route="recommendations" if unit else "popular",
        release="r1",
        item_ids=items,
        scores=[1.0] * len(items),
        sources=[("als",)] * len(items),
        served_at=T0 + timedelta(hours=hours),
        experiment="exp" if variant else None,
        variant=variant,
    )


DECISIONS = [
    shown("rA", "u1", ["i1", "i2", "i3"], 0, "control"),
    shown("rB", "u1", ["i2", "i4"], 1, "control"),
    shown("rC", "u2", ["i1", "i5"], 0, "treatment"),
    shown("rD", None, ["i1", "i2"], 0, None),  # a popular list: no unit
]


def ev(n: int, user: str, item: str, kind: str, hours: float, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "user_id": user,
        "item_id": item,
        "event_type": kind,
        "timestamp": (T0 + timedelta(hours=hours)).isoformat(),
        **extra,
    }


EVENTS = [
    ev(0, "u1", "i1", "click", 0.1, recommendation_id="rA", position=1),  # explicit rA
    ev(1, "u1", "i2", "click", 2),  # window: rB (1 h) is later than rA (0 h)
    ev(2, "u1", "i2", "purchase", 3, value=30.0),  # window: rB
    ev(3, "u1", "i3", "add_to_cart", 0.5, value=9.99),  # window: rA; a cart's value is no revenue
    ev(4, "u1", "i3", "click", 24.01),  # rA was 24.01 h before: outside the window
    ev(5, "u2", "i5", "purchase", 0.2, value=12.5, recommendation_id="rC", position=2),
    ev(6, "u2", "i1", "click", 0.3, recommendation_id="rD"),  # explicit, a list without a unit
    ev(7, "u1", "i1", "view", 0.1),  # a view is no outcome: not attributed by the window
    ev(8, "u3", "i1", "click", 0.1),  # nothing was shown to u3
    ev(9, "u1", "i1", "click", 0.1, recommendation_id="nope"),  # unknown id
    ev(10, "u1", "i9", "click", 0.1, recommendation_id="rA"),  # i9 was not in rA
    ev(11, "u1", "i2", "click", 0.1, recommendation_id="rA", position=3),  # i2 was at 2
    ev(12, "u1", "i2", "click", 0.1, position=3),  # a position needs its list
    ev(13, "u2", "i1", "click", -0.1),  # before rC was served
    ev(14, "u1", "i3", "click", 0.6, recommendation_id="rA", position=3),  # below k = 2
]


def ingest(
    store: EventStore, attributor: Attributor, records: list[dict[str, Any]]
) -> IngestResult:
    return ingest_events(store, records, EventSettings(), source="test", attributor=attributor)


def test_attribution_counts_exactly_what_was_sent(store: EventStore) -> None:
    store.append_decisions(DECISIONS)
    result = ingest(store, Attributor(store, SETTINGS), EVENTS)
    assert result.attributed == (
        (0, "explicit", "rA"),
        (1, "window", "rB"),
        (2, "window", "rB"),
        (3, "window", "rA"),
        (5, "explicit", "rC"),
        (6, "explicit", "rD"),
        (14, "explicit", "rA"),
    )
    refused = {r.index: [(e.field, e.reason) for e in r.errors] for r in result.rejected}
    assert sorted(refused) == [9, 10, 11, 12]
    assert refused[9][0][0] == "recommendation_id" and "unknown" in refused[9][0][1]
    assert refused[10] == [("recommendation_id", "item 'i9' was not in the list 'rA'")]
    assert refused[11] == [("position", "item 'i2' was shown at position 2 of 'rA', not 3")]
    assert refused[12][0][0] == "position"
    assert result.accepted == len(EVENTS) - 4
    stored = store.scan_attributions().sort_values("event_id")
    assert stored[["event_id", "recommendation_id", "position", "rule"]].values.tolist() == [
        ["e0", "rA", 1, "explicit"],
        ["e1", "rB", 1, "window"],
        ["e14", "rA", 3, "explicit"],
        ["e2", "rB", 1, "window"],
        ["e3", "rA", 3, "window"],
        ["e5", "rC", 2, "explicit"],
        ["e6", "rD", 1, "explicit"],
    ]
    # a retried batch attributes nothing twice
    again = ingest(store, Attributor(store, SETTINGS), EVENTS)
    assert again.accepted == 0 and len(store.scan_attributions()) == 7


def test_outcomes_per_unit_equal_the_hand_count(store: EventStore) -> None:
    store.append_decisions(DECISIONS)
    ingest(store, Attributor(store, SETTINGS), EVENTS)
    got = per_unit(store)
    assert list(got.columns) == list(PER_UNIT_COLUMNS)
    rows = got.drop(columns="first_seen").values.tolist()
    assert rows == [
        ["u1", "control", 2, 5, 3, 1, 1, 30.0],
        ["u2", "treatment", 1, 2, 0, 0, 1, 12.5],
    ]
    assert got["first_seen"].tolist() == [pd.Timestamp(T0), pd.Timestamp(T0)]
    assert str(got["first_seen"].dtype) == "datetime64[ns, UTC]"
    assert per_unit(store, experiment="other").empty
    assert per_unit(store, since=T0 + timedelta(minutes=30))["unit"].tolist() == ["u1"]


def test_kpis_equal_the_hand_count(store: EventStore) -> None:
    store.append_decisions(DECISIONS)
    ingest(store, Attributor(store, SETTINGS), EVENTS)
    row = kpis(store, SETTINGS.kinds(), k=2, catalogue_size=10).iloc[0].to_dict()
    assert {
        k: row[k] for k in ("lists", "impressions", "users", "clicks", "carts", "purchases")
    } == {
        "lists": 4,
        "impressions": 9,
        "users": 2,
        "clicks": 4,
        "carts": 1,
        "purchases": 2,
    }
    assert row["revenue"] == 42.5
    assert row["ctr"] == pytest.approx(4 / 9)
    assert row["ctr_at_k"] == pytest.approx(
        3 / 8
    )  # e0, e1, e6 at position 1 (e14 at 3); 8 items at 1-2
    assert row["cart_rate"] == pytest.approx(1 / 9)
    assert row["conversion"] == 1.0  # u1 (e2) and u2 (e5) both bought
    assert row["revenue_per_user"] == pytest.approx(42.5 / 2)
    assert row["revenue_per_impression"] == pytest.approx(42.5 / 9)
    assert row["coverage"] == 0.5  # i1..i5 of 10
    assert "noisy" in row["note"]
    by = kpis(store, SETTINGS.kinds(), by="variant").set_index("group")
    assert by.loc["control", ["lists", "impressions", "clicks", "revenue"]].tolist() == [
        2,
        5,
        3,
        30.0,
    ]
    assert by.loc["(none)", ["lists", "clicks", "users"]].tolist() == [1, 1, 0]


def test_a_decision_still_in_the_buffer_is_known(store: EventStore) -> None:
    log = DecisionLog(store, SETTINGS)  # not started: the decision stays buffered
    log.record(shown("rP", "u1", ["i1", "i2"], 0, None))
    result = ingest(
        store,
        Attributor(store, SETTINGS, log),
        [
            ev(0, "u1", "i2", "click", 0.1, recommendation_id="rP", position=2),
            ev(1, "u1", "i1", "click", 0.2),
        ],
    )
    assert result.rejected == ()
    assert result.attributed == ((0, "explicit", "rP"), (1, "window", "rP"))


def test_an_id_another_worker_stores_meanwhile_is_waited_for(store: EventStore) -> None:
    """Another process issued the id and flushes it while this one waits (once per batch)."""
    late = threading.Timer(0.3, store.append_decisions, ([shown("rW", "u1", ["i1"], 0, None)],))
    late.start()
    result = ingest(
        store,
        Attributor(store, SETTINGS, wait_unknown_s=1.0),
        [ev(0, "u1", "i1", "click", 0.1, recommendation_id="rW")],
    )
    late.join()
    assert result.rejected == () and result.attributed == ((0, "explicit", "rW"),)
