"""Exposure constraints on served lists: hand-checked cases and properties over random catalogues.

The oracle counts group members in plain Python over the ``Item`` records (not through the
ItemTable or the quotas), so a wrong mask or a wrong count shows up as a disagreement.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from recsmith.events.schema import Item
from recsmith.fairness import ExposureRule, build_fairness
from recsmith.ids import IdMap
from recsmith.rerank import ItemTable, parse_rules, rerank

BRANDS = ["big", "small", "mid"]


def _run(ranked, items, rows, k, exposure, rules=(), lam=0.0, beta=0.0, history=None):
    ids = IdMap([it.item_id for it in items])
    table = ItemTable.from_items(items, ids)
    pop = np.arange(len(items), dtype=float)
    fair = build_fairness(
        table, calibration=lam, exposure=exposure, popularity_penalty=beta, popularity=pop
    )
    out = rerank(
        ranked(rows),
        k=k,
        table=table,
        item_ids=ids,
        rules=parse_rules(list(rules)),
        fairness=fair,
        history=history,
    )
    lists = [out.items[out.query == q].tolist() for q in range(len(rows))]
    return lists, (fair.unmet(out, table, k) if fair else [[] for _ in rows])


def test_a_floor_brings_the_best_small_items_in_at_the_bottom(ranked) -> None:
    """Ten big-brand items ahead of two small ones; at least 2 of 5 small: the two best big items
    keep slots 1-3 and the small ones take the last two (in their own order)."""
    items = [
        Item(item_id=f"i{j}", properties={"brand": "big" if j < 10 else "small"}) for j in range(12)
    ]
    floor = ExposureRule(property="brand", equals="small", at_least=0.4)
    lists, unmet = _run(ranked, items, [list(range(12))], 5, [floor])
    assert lists == [[0, 1, 2, 10, 11]]
    assert unmet == [[]]


def test_a_ceiling_frees_slots_for_the_next_best(ranked) -> None:
    items = [
        Item(item_id=f"i{j}", properties={"brand": "big" if j < 6 else "small"}) for j in range(9)
    ]
    ceiling = ExposureRule(property="brand", equals="big", at_most=0.3)  # 3 of 10 → floor(3.0)=3
    lists, _ = _run(ranked, items, [list(range(9))], 10, [ceiling])
    assert lists == [[0, 1, 2, 6, 7, 8]]  # the list runs short rather than break the ceiling


def test_rules_win_over_a_floor_and_the_shortfall_is_named(ranked) -> None:
    """The only small items are blocklisted / unavailable: the floor cannot be met, the list
    fills with the best of the rest and ``unmet`` names the floor."""
    items = [
        Item(item_id=f"i{j}", properties={"brand": "big" if j < 6 else "small"}) for j in range(8)
    ]
    items[7] = Item(item_id="i7", properties={"brand": "small"}, available=False)
    floor = ExposureRule(name="small brands", property="brand", equals="small", at_least=0.5)
    lists, unmet = _run(
        ranked, items, [list(range(8))], 4, [floor], rules=[{"type": "blocklist", "items": ["i6"]}]
    )
    assert lists == [[0, 1, 2, 3]]
    assert unmet == [["small brands"]]


def test_shares_round_to_counts_of_k() -> None:
    rule = ExposureRule(property="brand", equals="x", at_least=0.25, at_most=0.35)
    assert (rule.floor_count(10), rule.ceiling_count(10)) == (3, 3)
    assert (rule.floor_count(4), rule.ceiling_count(4)) == (1, 1)
    with pytest.raises(ValueError, match="at_least"):
        ExposureRule(property="brand", equals="x")
    with pytest.raises(ValueError, match="above"):
        ExposureRule(property="brand", equals="x", at_least=0.5, at_most=0.2)


def test_popularity_penalty_reorders_by_the_stated_factor(ranked) -> None:
    """Counts 0, 1, 2, ... per item index; β = 1: item j at rank r competes at
    ``-log(1 + r) - log(1 + j)``. Candidates [3, 0, 1]: item 3 (rank 0) scores −log 4 = −1.386,
    item 0 (rank 1) −log 2 = −0.693, item 1 (rank 2) −log 3 − log 2 = −1.792 → [0, 3, 1]."""
    items = [Item(item_id=f"i{j}") for j in range(4)]
    lists, _ = _run(ranked, items, [[3, 0, 1]], 3, [], beta=1.0)
    assert lists == [[0, 3, 1]]


@st.composite
def cases(draw: st.DrawFn):
    n = draw(st.integers(3, 14))
    items = [
        Item(
            item_id=f"i{j}",
            available=draw(st.sampled_from([True, True, True, False])),
            categories=[draw(st.sampled_from(["c0", "c1", "c2"]))],
            properties={"brand": draw(st.sampled_from(BRANDS))},
        )
        for j in range(n)
    ]
    rows = [
        draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=n, unique=True))
        for _ in range(draw(st.integers(1, 4)))
    ]
    k = draw(st.integers(1, 8))
    exposure = []
    for brand in draw(st.lists(st.sampled_from(BRANDS), max_size=2, unique=True)):
        lo = draw(st.one_of(st.none(), st.sampled_from([0.1, 0.2, 0.3, 0.5])))
        hi = draw(st.one_of(st.none(), st.sampled_from([0.3, 0.5, 0.7, 1.0])))
        if lo is None and hi is None:
            lo = 0.2
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        exposure.append(ExposureRule(property="brand", equals=brand, at_least=lo, at_most=hi))
    rules = []
    if draw(st.booleans()):
        rules.append({"type": "blocklist", "items": [f"i{draw(st.integers(0, n - 1))}"]})
    if draw(st.booleans()):
        rules.append({"type": "cap_per_category", "max": draw(st.integers(1, 3))})
    if draw(st.booleans()):
        rules.append({"type": "pin", "item": f"i{draw(st.integers(0, n - 1))}", "position": 1})
    lam = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))
    beta = draw(st.sampled_from([0.0, 0.5]))
    history = sparse.csr_array(
        np.asarray([[draw(st.sampled_from([0, 0, 1])) for _ in range(n)] for _ in rows], np.float64)
    )
    return items, rows, k, exposure, rules, lam, beta, history


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_constraints_hold_on_served_lists_and_rules_still_win(ranked, case) -> None:
    items, rows, k, exposure, rules, lam, beta, history = case
    lists, unmet = _run(ranked, items, rows, k, exposure, rules, lam, beta, history)
    banned = {int(r["items"][0][1:]) for r in rules if r["type"] == "blocklist"}
    cap = next((r["max"] for r in rules if r["type"] == "cap_per_category"), None)
    pin = next((int(r["item"][1:]) for r in rules if r["type"] == "pin"), None)
    for row, shown, short in zip(rows, lists, unmet, strict=True):
        allowed = [i for i in dict.fromkeys(row) if items[i].available and i not in banned]
        # rules win: nothing removed is shown, nothing twice, at most k, the cap holds
        assert set(shown) <= set(allowed) and len(shown) == len(set(shown)) <= k
        if cap is not None:
            per_cat = [items[i].categories[0] for i in shown]
            assert max(map(per_cat.count, set(per_cat)), default=0) <= cap
        pinned = pin if pin in allowed else None
        if pinned is not None:
            assert shown[0] == pinned
        for rule in exposure:
            brand = rule.equals
            held = sum(items[i].properties["brand"] == brand for i in shown)
            pinned_here = int(pinned is not None and items[pinned].properties["brand"] == brand)
            if rule.at_most is not None:  # a pin is a rule: it may exceed a ceiling, nothing else
                assert held <= max(math.floor(rule.at_most * k + 1e-9), pinned_here)
            need = math.ceil(rule.at_least * k - 1e-9) if rule.at_least else 0
            # a shortfall is always reported, and never reported when there is none
            assert (rule.label in short) == (held < need)
            ceiling = math.floor(rule.at_most * k + 1e-9) if rule.at_most is not None else k
            # a floor above its own ceiling at this k (0.1 and 0.3 of 1) yields to the ceiling
            if held < min(need, ceiling) and len(exposure) == 1 and cap is None:
                # a lone floor falls short only when nothing more of the group could come in
                # (or every slot that is not a pin already holds one of the group)
                spare = [i for i in allowed if i not in shown]
                group_spare = [i for i in spare if items[i].properties["brand"] == brand]
                free = [i for i in shown if i != pinned]
                assert not group_spare or (
                    all(items[i].properties["brand"] == brand for i in free) and len(shown) == k
                )
