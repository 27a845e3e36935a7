"""What a served list leaves in the store, field by field, against values written here by hand:
the route's hand-over (``record_served``), the buffer and the writer's rows (``header_rows``)
must neither drop, reorder nor alter anything on the way."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from recsmith.config import DecisionSettings
from recsmith.decisions.log import DecisionLog
from recsmith.decisions.record import decision
from recsmith.decisions.rows import header_rows
from recsmith.decisions.served import record_served
from recsmith.serving.metrics import Metrics
from recsmith.store.base import EventStore

SERVED = datetime(2026, 12, 4, 12, 0, 0, 250_000, tzinfo=UTC)
SERVED_US = 1_796_385_600_250_000


def test_a_recorded_list_is_stored_as_served(store: EventStore) -> None:
    log = DecisionLog(store, DecisionSettings())
    metrics = Metrics.create()
    record_served(
        log,
        metrics,
        "rec-1",
        route="recommendations",
        release="rel-7",
        item_ids=["i3", "i1", "i2"],
        scores=[np.float32(0.5), 2, 0.25],  # what a response may hold: numpy and int scores
        sources=[["als", "cooc"], ["popular"], ["session"]],
        unit="u9",
        unit_kind="user",
        latency_ms=4.5,
        propensities=[0.5, 0.25, 1.0],
    )
    other = decision(
        "rec-2",
        unit=None,
        unit_kind="none",
        route="popular",
        release="rel-7",
        item_ids=["i8"],
        scores=[1.0],
        sources=[("popular",)],
    )
    log.record(other)
    assert log.flush() == 2
    assert (
        metrics.registry.get_sample_value(
            "recsmith_impressions_total",
            {"route": "recommendations", "release": "rel-7", "variant": ""},
        )
        == 3.0
    )

    got = store.get_decision("rec-1")
    assert got is not None
    assert got.item_ids == ("i3", "i1", "i2")
    assert got.scores == (0.5, 2.0, 0.25)
    assert got.sources == (("als", "cooc"), ("popular",), ("session",))
    assert got.propensities == (0.5, 0.25, 1.0)
    assert (got.unit, got.unit_kind, got.route, got.release) == (
        "u9",
        "user",
        "recommendations",
        "rel-7",
    )
    assert got.latency_ms == 4.5 and got.experiment is None and got.page_view is None
    assert got.position_of("i2") == 3

    shown = store.scan_decisions().sort_values(["recommendation_id", "position"])
    assert shown["recommendation_id"].tolist() == ["rec-1", "rec-1", "rec-1", "rec-2"]
    assert shown["position"].tolist() == [1, 2, 3, 1]
    assert shown["item_id"].tolist() == ["i3", "i1", "i2", "i8"]
    assert shown["sources"].tolist() == ["als|cooc", "popular", "session", "popular"]
    assert shown["score"].tolist() == [0.5, 2.0, 0.25, 1.0]
    assert shown["propensity"].tolist() == [0.5, 0.25, 1.0, 1.0]


def test_the_writer_row_packs_each_item_into_its_list() -> None:
    d = decision(
        "rec-3",
        unit="u1",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=["a", "b"],
        scores=[2.0, 1.0],
        sources=[["als"], ["als", "cooc"]],
        served_at=SERVED,
        propensities=[0.75, 0.5],
    )
    assert header_rows([d]) == [
        (
            "rec-3",
            SERVED_US,
            "u1",
            "user",
            "recommendations",
            None,
            "rel-1",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            2,
            '[["a","b"],[2.0,1.0],[["als"],["als","cooc"]],[0.75,0.5]]',
        )
    ]


def test_a_list_whose_scores_do_not_match_its_items_is_refused() -> None:
    d = decision(
        "rec-4",
        unit="u1",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=["a", "b"],
        scores=[2.0],
        sources=[["als"], ["als"]],
        propensities=[1.0, 1.0],
    )
    with pytest.raises(ValueError):
        header_rows([d])
