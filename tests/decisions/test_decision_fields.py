"""``decision`` hands ``Decision`` its fields by position: each keyword must land in the field of
its own name (a value per field, each distinct, read back by name)."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from recsmith.decisions.record import Decision, decision


def test_every_keyword_lands_in_its_own_field() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    given = {
        "unit": "the-unit",
        "unit_kind": "session",
        "route": "similar",
        "release": "the-release",
        "placement": "the-placement",
        "experiment": "the-experiment",
        "variant": "the-variant",
        "served_at": at,
        "latency_ms": 2.5,
        "assignment_propensity": 0.25,
        "page_view": "the-page-view",
        "arm": "the-arm",
        "arm_propensity": 0.75,
    }
    made = decision(
        "the-id",
        item_ids=["a", "b"],
        scores=[1, 0.5],
        sources=[["knn"], ["popular", "knn"]],
        propensities=[0.5, 1.0],
        arm_context=[1, 2],
        **given,  # type: ignore[arg-type]
    )
    expected = {
        **given,
        "recommendation_id": "the-id",
        "item_ids": ("a", "b"),
        "scores": (1.0, 0.5),
        "sources": (("knn",), ("popular", "knn")),
        "propensities": (0.5, 1.0),
        "arm_context": (1.0, 2.0),
    }
    assert {f.name: getattr(made, f.name) for f in fields(Decision)} == expected
    assert type(made.scores[0]) is float and type(made.arm_context[0]) is float  # type: ignore[index]


def test_a_deterministic_list_served_now() -> None:
    before = datetime.now(UTC)
    made = decision(
        "x",
        unit=None,
        unit_kind="none",
        route="popular",
        release="r",
        item_ids=["a"],
        scores=[1.0],
        sources=[["popular"]],
    )
    assert made.propensities == (1.0,) and before <= made.served_at <= datetime.now(UTC)
    assert (made.placement, made.experiment, made.arm_context, made.latency_ms) == (None,) * 4
