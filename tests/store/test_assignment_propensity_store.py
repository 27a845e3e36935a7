"""The decision log's ``assignment_propensity`` and the attribution lookups' ``experiment``, on
SQLite and PostgreSQL alike (what adaptive allocation and its report read back)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from recsmith.decisions.record import decision
from recsmith.store.base import EventStore

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_assignment_propensity_and_experiment_round_trip(store: EventStore) -> None:
    made = [
        decision(
            rid,
            unit="u1",
            unit_kind="user",
            route="recommendations",
            release="r1",
            item_ids=["i1"],
            scores=[1.0],
            sources=[("als",)],
            experiment=experiment,
            variant=variant,
            served_at=T0,
            assignment_propensity=chance,
        )
        for rid, experiment, variant, chance in (
            ("r-a", "ts", "treatment", 0.123456789012345),
            ("r-b", None, None, None),
        )
    ]
    store.append_decisions(made)
    for d in made:
        assert store.get_decision(d.recommendation_id) == d
    shown = store.scan_decisions().set_index("recommendation_id")["assignment_propensity"]
    assert shown["r-a"] == 0.123456789012345 and shown["r-b"] != shown["r-b"]  # NaN
    found = store.shown_in(["r-a", "r-b"]).set_index("recommendation_id")["experiment"]
    assert found["r-a"] == "ts" and pd.isna(found["r-b"])
