"""Calibrated re-ranking against a two-user, three-category case worked out by hand.

Categories A, B, C; items a1..a3 (A), b1 (B), c1, c2 (C). Relevance is the re-ranking's rank-based
``-log(1 + rank)`` min-max scaled per query; α = 0.01; λ = 0.6, so a candidate scores
``0.4 · relevance + 0.6 · Σ_g p(g) log q̃(g)`` with it in the list. The arithmetic, step by step:

User 0: history one A and one B item, p = (½, ½, 0); candidates a1 a2 a3 b1 c1; k = 2.
  relevance: a1 1, a2 0.5693, a3 0.3174, b1 0.1386, c1 0.
  step 1 (n = 1): a1 → q̃ = (0.995, 0.005, 0), fit −2.65166, score 0.4 − 1.59100 = −1.19100;
    b1 → the same fit, score 0.05544 − 1.59100 = −1.53554; c1 → fit −5.29832, −3.17899. a1.
  step 2 (n = 2): a2 → fit −2.65166, score −1.36327; b1 → q̃ = (½, ½, 0), fit log ½ = −0.69315,
    score −0.36043. b1. List [a1, b1]: KL = 0. The relevance list [a1, a2]: KL = log ½ + 2.65166
    = 1.95850.
User 1: history A, C, C: p = (⅓, 0, ⅔); candidates a1 b1 c1 c2; k = 3.
  relevance: a1 1, b1 0.5, c1 0.2075, c2 0.
  step 1: a1 fit −3.34265 → −1.60559; b1 fit −5.24168 → −2.94501; c1 fit −1.90349 → −1.05908. c1.
  step 2: a1 → q̃ = (0.49833, 0, 0.50167), fit −0.69204 → −0.01522; b1 → −1.21668;
    c2 → −1.14209. a1.
  step 3: c2 → q̃ = p, fit Σ p log p = −0.63651 → −0.38191; b1 → q̃ = (⅓, 0.33, 0.33667), fit
    −1.09198 → −0.45519. c2. List [c1, a1, c2]: KL = 0. Relevance list [a1, b1, c1]: KL =
    −0.63651 + 1.09198 = 0.45546. (At λ = 0.5 step 3 goes the other way: b1 scores
    0.25 − 0.54599 = −0.29599 against c2's −0.31826, and the list stays miscalibrated.)
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsmith.evaluation.fairness import group_matrix, miscalibration
from recsmith.events.schema import Item
from recsmith.fairness import build_fairness
from recsmith.ids import IdMap
from recsmith.rerank import ItemTable, rerank

IDS = ["a1", "a2", "a3", "b1", "c1", "c2", "hA", "hB", "hC"]
CATS = {"a": "A", "b": "B", "c": "C", "h": None}
ITEMS = [Item(item_id=i, categories=[i[1] if i[0] == "h" else CATS[i[0]]]) for i in IDS]


def _idx(rows: list[list[str]]) -> list[list[int]]:
    return [[IDS.index(i) for i in row] for row in rows]


HISTORY = sparse.csr_array(
    np.array(
        [
            [0, 0, 0, 0, 0, 0, 1, 1, 0],  # user 0: one A, one B
            [0, 0, 0, 0, 0, 0, 1, 0, 2],  # user 1: one A, two C (weight 2)
        ],
        np.float64,
    )
)
CANDS = [["a1", "a2", "a3", "b1", "c1"], ["a1", "b1", "c1", "c2"]]


@pytest.fixture(scope="module")
def table() -> ItemTable:
    return ItemTable.from_items(ITEMS, IdMap(IDS))


def _lists(ranked, table: ItemTable, k: int, lam: float) -> list[list[str]]:
    fair = build_fairness(table, calibration=lam) if lam else None
    out = rerank(
        ranked(_idx(CANDS)), k=k, table=table, item_ids=IdMap(IDS), fairness=fair, history=HISTORY
    )
    return [[IDS[i] for i in out.items[out.query == q]] for q in range(2)]


def _kl(table: ItemTable, lists: list[list[str]]) -> np.ndarray:
    k = max(map(len, lists))
    recs = np.full((2, k), -1)
    for u, row in enumerate(lists):
        recs[u, : len(row)] = [IDS.index(i) for i in row]
    groups, _ = group_matrix([it.categories for it in ITEMS])
    return miscalibration(recs, HISTORY, groups)


def test_calibrated_picks_match_the_hand_computed_greedy(ranked, table: ItemTable) -> None:
    assert _lists(ranked, table, 2, 0.6)[0] == ["a1", "b1"]
    assert _lists(ranked, table, 3, 0.6)[1] == ["c1", "a1", "c2"]


def test_half_calibration_stops_short_where_the_hand_computation_says(
    ranked, table: ItemTable
) -> None:
    assert _lists(ranked, table, 3, 0.5)[1] == ["c1", "a1", "b1"]


def test_calibration_off_keeps_relevance_order(ranked, table: ItemTable) -> None:
    assert _lists(ranked, table, 2, 0.0)[0] == ["a1", "a2"]
    assert _lists(ranked, table, 3, 0.0)[1] == ["a1", "b1", "c1"]


def test_miscalibration_falls_to_the_hand_computed_values(ranked, table: ItemTable) -> None:
    before = [_lists(ranked, table, 2, 0.0)[0], _lists(ranked, table, 3, 0.0)[1]]
    after = [_lists(ranked, table, 2, 0.6)[0], _lists(ranked, table, 3, 0.6)[1]]
    np.testing.assert_allclose(_kl(table, before), [1.95850, 0.45546], atol=1e-4)
    np.testing.assert_allclose(_kl(table, after), [0.0, 0.0], atol=1e-9)


def test_a_user_without_history_keeps_relevance_order(ranked, table: ItemTable) -> None:
    fair = build_fairness(table, calibration=1.0)
    empty = sparse.csr_array((2, len(IDS)))
    out = rerank(
        ranked(_idx(CANDS)), k=2, table=table, item_ids=IdMap(IDS), fairness=fair, history=empty
    )
    assert [IDS[i] for i in out.items[out.query == 0]] == ["a1", "a2"]


def test_calibration_over_a_declared_property(ranked) -> None:
    """The mix can be of any catalogue property: here 'brand', which cuts across categories."""
    items = [
        Item(item_id=i, categories=["X"], properties={"brand": "p" if i in ("a2", "hA") else "q"})
        for i in IDS
    ]
    table = ItemTable.from_items(items, IdMap(IDS))
    fair = build_fairness(table, calibration=1.0, calibration_property="brand")
    history = sparse.csr_array(np.eye(1, len(IDS), IDS.index("hA")))  # all brand p
    out = rerank(
        ranked(_idx([["a1", "a2", "a3"]])),
        k=1,
        table=table,
        item_ids=IdMap(IDS),
        fairness=fair,
        history=history,
    )
    assert [IDS[i] for i in out.items] == ["a2"]
