"""Item-kNN's shrunk cosine (weighted and ``binary``) and co-occurrence's confidence, lift and
``min_support``, each against values worked out by hand on a three-item frame."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.base import Recommender
from recsmith.models.registry import create


def interactions(rows: list[tuple[str, str, str, str | None]]) -> Interactions:
    """(user, item, event type, session) rows, one second apart."""
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "session_id"])
    return Interactions.from_events(
        frame.assign(
            event_id=[f"e{n}" for n in range(len(frame))],
            value=np.nan,
            context=None,
            ts=(1_700_000_000 + np.arange(len(frame))) * 1_000_000,
        ),
        EventSettings().weights,
    )


def similar(model: Recommender, data: Interactions, item: str) -> dict[str, float]:
    top = model.similar_items(data.items.to_index([item]), 3)
    ids, scores = top.ids[0], top.scores[0]
    return dict(zip(data.items.to_external(ids[ids >= 0]), scores[ids >= 0].tolist(), strict=True))


# Item vectors over users (u1, u2, u3), a purchase weighing 5: a = (1, 5, 0), b = (1, 1, 1),
# c = (0, 0, 1). Binary: a = (1, 1, 0).
KNN = interactions(
    [
        ("u1", "a", "view", None),
        ("u1", "b", "view", None),
        ("u2", "a", "purchase", None),
        ("u2", "b", "view", None),
        ("u3", "b", "view", None),
        ("u3", "c", "view", None),
    ]
)


@pytest.mark.parametrize("shrinkage", [0.0, 10.0])
def test_itemknn_is_a_shrunk_cosine_of_weighted_vectors(shrinkage: float) -> None:
    model = create("itemknn", shrinkage=shrinkage).fit(KNN)
    ab = (1 + 5) / (math.sqrt(26) * math.sqrt(3) + shrinkage)
    bc = 1 / (math.sqrt(3) + shrinkage)
    assert similar(model, KNN, "a") == pytest.approx({"b": ab}, rel=1e-5)
    assert similar(model, KNN, "b") == pytest.approx({"a": ab, "c": bc}, rel=1e-5)
    # u1 had a and b: c scores x_u1,b * sim(b, c) + x_u1,a * sim(a, c) = bc
    top = model.recommend(
        KNN.users.to_index(["u1"]), 1, exclude=KNN.matrix[KNN.users.to_index(["u1"])]
    )
    assert KNN.items.to_external(top.ids[0]).tolist() == ["c"]
    assert top.scores[0, 0] == pytest.approx(bc, rel=1e-5)


def test_itemknn_binary_counts_every_interaction_as_one() -> None:
    model = create("itemknn", shrinkage=1.0, binary=True).fit(KNN)
    ab = 2 / (math.sqrt(2) * math.sqrt(3) + 1.0)
    assert similar(model, KNN, "a") == pytest.approx({"b": ab}, rel=1e-5)


# Baskets (sessions): {a, b}, {a, b}, {a, c}, {b, c}, {a}. n(a) = 4, n(b) = 3, n(c) = 2, N = 5;
# co(a, b) = 2, co(a, c) = 1, co(b, c) = 1.
BASKETS = interactions(
    [
        (f"u{s}", item, "view", f"s{s}")
        for s, basket in enumerate([("a", "b"), ("a", "b"), ("a", "c"), ("b", "c"), ("a",)])
        for item in basket
    ]
)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            "confidence",  # P(j | i) = co(i, j) / n(i)
            {
                "a": {"b": 2 / 4, "c": 1 / 4},
                "b": {"a": 2 / 3, "c": 1 / 3},
                "c": {"a": 0.5, "b": 0.5},
            },
        ),
        (
            "lift",  # co(i, j) * N / (n(i) n(j))
            {
                "a": {"b": 2 * 5 / 12, "c": 5 / 8},
                "b": {"a": 2 * 5 / 12, "c": 5 / 6},
                "c": {"a": 5 / 8, "b": 5 / 6},
            },
        ),
    ],
)
def test_cooccurrence_scores_by_hand(metric: str, expected: dict[str, dict[str, float]]) -> None:
    model = create("cooccurrence", metric=metric, min_support=1).fit(BASKETS)
    for item, row in expected.items():
        assert similar(model, BASKETS, item) == pytest.approx(row, rel=1e-5)


def test_cooccurrence_min_support_drops_rarer_pairs() -> None:
    model = create("cooccurrence", min_support=2).fit(BASKETS)  # only a and b share 2 baskets
    assert similar(model, BASKETS, "a") == pytest.approx({"b": 0.5})
    assert similar(model, BASKETS, "b") == pytest.approx({"a": 2 / 3})
    assert similar(model, BASKETS, "c") == {}
