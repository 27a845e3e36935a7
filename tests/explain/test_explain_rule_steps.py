"""``moved_by`` names the business rule that moved an item, checked against positions worked out
by hand on a five-item pool (rank-based relevance, ``rerank.plan``: an item at 0-based rank r
boosted by f competes with ``-log(1 + r) + log f``)."""

from __future__ import annotations

import numpy as np

from recsmith.events.schema import Item
from recsmith.explain.positions import moved_by, positions
from recsmith.explain.rule_steps import AVAILABILITY, describe, moved_by_rules, rule_steps
from recsmith.explain.trace import Trace
from recsmith.ids import IdMap
from recsmith.rerank import ItemTable
from recsmith.rerank.reranker import Reranker
from recsmith.rerank.rules import parse_rules
from recsmith.retrieval.candidates import Candidates

IDS = ["a", "b", "c", "d", "e"]
ITEMS = [
    Item(item_id="a", categories=["y"]),
    Item(item_id="b", categories=["y"]),
    Item(item_id="c", categories=["y"], available=False),
    Item(item_id="d", categories=["x"]),
    Item(item_id="e", categories=["y"]),
]
BOOST, BLOCK = "rules[0] boost category=x x50", "rules[1] blocklist [b]"
PIN = "request.rules[0] pin e at 1"


def _pool() -> Candidates:
    n = len(IDS)
    score = np.arange(n, 0, -1, dtype=np.float32)
    return Candidates(
        1,
        ("s",),
        np.zeros(n, np.int32),
        np.arange(n, dtype=np.int32),
        score,
        score.reshape(-1, 1),
        np.arange(1, n + 1, dtype=np.int16).reshape(-1, 1),
    )


def _steps() -> dict[str, Candidates]:
    ids = IdMap(IDS)
    configured = parse_rules(
        [
            {"type": "boost", "property": "category", "equals": "x", "factor": 50},
            {"type": "blocklist", "items": ["b"]},
        ]
    )
    reranker = Reranker(ItemTable.from_items(ITEMS, ids), ids, rules=tuple(configured))
    request = tuple(parse_rules([{"type": "pin", "item": "e", "position": 1}]))
    return rule_steps(reranker, Trace(pool=_pool(), rules=request), configured)


def test_each_step_lists_what_the_rules_so_far_leave() -> None:
    """No rules: c (unavailable) goes. Boost: d, at rank 2 of a b d e, scores -log 3 + log 50 >
    0 = a's, so it leads. Blocklist: b goes. The request's pin puts e first."""
    steps = _steps()
    assert list(steps) == [AVAILABILITY, BOOST, BLOCK, PIN]
    shown = {label: [IDS[i] for i in rows.items] for label, rows in steps.items()}
    assert shown == {
        AVAILABILITY: ["a", "b", "d", "e"],
        BOOST: ["d", "a", "b", "e"],
        BLOCK: ["d", "a", "e"],
        PIN: ["e", "d", "a"],
    }


def test_moved_by_names_each_rule_that_changed_the_position() -> None:
    steps = _steps()
    # ranked a 1, d 4, e 5; a: 1 1 2 2 3, d: 4 3 1 1 2, e: 5 4 4 3 1
    assert moved_by_rules(steps, 1, IDS.index("a")) == [BOOST, PIN]
    assert moved_by_rules(steps, 4, IDS.index("d")) == [AVAILABILITY, BOOST, PIN]
    assert moved_by_rules(steps, 5, IDS.index("e")) == [AVAILABILITY, BLOCK, PIN]


def test_the_rules_come_right_after_the_stage_and_stay_when_they_cancel_out() -> None:
    at = {"ranked": 2, "rules": 2, "diversity": 1}  # moved down by one rule, up by another
    assert moved_by(at, ["rules[0] bury brand=z x0.5", "rules[1] pin q at 1"]) == [
        "rules[0] bury brand=z x0.5",
        "rules[1] pin q at 1",
        "diversity",
    ]
    assert moved_by({"ranked": 3, "rules": 1}, [BOOST]) == ["rules", BOOST]
    assert positions(_steps(), IDS.index("b"))[BLOCK] is None


def test_rules_are_described_as_their_file_says_them() -> None:
    rules = parse_rules(
        [
            {"type": "filter", "property": "price", "min": 10, "max": 50},
            {"type": "filter", "property": "category", "in": ["shoes", "bags"], "negate": True},
            {"type": "bury", "property": "brand", "equals": "acme", "factor": 0.5},
            {"type": "exclude", "items": ["p", "q", "r", "s"]},
            {"type": "cap_per_category", "max": 2},
        ]
    )
    assert [describe(r) for r in rules] == [
        "filter price in 10..50",
        "filter not category in [shoes, bags]",
        "bury brand=acme x0.5",
        "exclude [p, q, r, ...]",
        "cap_per_category max=2",
    ]
