"""Business rules, one at a time, on the hand-made catalogue of conftest.py.

One query proposes every item in id order (a best, x worst); c is unavailable, x has no metadata.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from recsmith.errors import ValidationError
from recsmith.ids import IdMap
from recsmith.rerank import (
    CapPerCategoryRule,
    FilterRule,
    ItemTable,
    PinRule,
    apply_rules,
    compile_rules,
    parse_rules,
)
from recsmith.rerank import rules as rules_module
from recsmith.retrieval.candidates import Candidates

ALL = ["a", "b", "c", "d", "e", "f", "g", "x"]

Run = Callable[..., list[str]]


@pytest.fixture
def run(table: ItemTable, item_ids: IdMap, make: Callable[..., Candidates], shown: Run) -> Run:
    def go(rules: list[dict[str, Any]], k: int = 10, rows: list[str] = ALL, **kw: Any) -> list[str]:
        return shown(apply_rules(make([rows], **kw), parse_rules(rules), table, item_ids, k))

    return go


def test_no_rules_drops_only_the_unavailable(run: Run) -> None:
    assert run([]) == ["a", "b", "d", "e", "f", "g", "x"]
    assert run([], k=3) == ["a", "b", "d"]
    assert run([], k=0) == []


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"property": "available", "equals": True}, ["a", "b", "d", "e", "f", "g", "x"]),
        ({"property": "category", "in": ["shoes"]}, ["a", "b", "e"]),  # e: hats *and* shoes
        ({"property": "category", "in": ["shoes"], "negate": True}, ["d", "f", "g", "x"]),
        ({"property": "category", "equals": "nope"}, []),
        ({"property": "tag", "equals": "new"}, ["d"]),
        ({"property": "price", "min": 10, "max": 50}, ["a", "d", "f", "g"]),  # NaN never in range
        ({"property": "price", "max": 15.5}, ["f", "g"]),
        ({"property": "price", "min": 50}, ["b"]),
        ({"property": "brand", "equals": "acme"}, ["a"]),
        ({"property": "brand", "in": ["acme", "zed"]}, ["a", "b", "d"]),
        ({"property": "brand", "equals": "acme", "negate": True}, ["b", "d", "e", "f", "g", "x"]),
        ({"property": "featured", "equals": True}, ["f"]),
        ({"property": "featured", "equals": 1}, ["g"]),  # 1 is not true
        ({"property": "no-such-property", "in": ["v"]}, []),
    ],
)
def test_filter(run: Run, rule: dict[str, Any], expected: list[str]) -> None:
    assert run([{"type": "filter", **rule}]) == expected


def test_filters_combine_with_and(run: Run) -> None:
    rules = [
        {"type": "filter", "property": "price", "min": 10, "max": 50},
        {"type": "filter", "property": "category", "in": ["bags", "hats"]},
    ]
    assert run(rules) == ["d", "g"]


def test_exclude_and_blocklist(run: Run) -> None:
    assert run([{"type": "exclude", "items": ["a", "unknown-id"]}]) == [
        "b",
        "d",
        "e",
        "f",
        "g",
        "x",
    ]
    rules = [{"type": "blocklist", "items": ["x", "b"]}, {"type": "exclude", "items": ["f"]}]
    assert run(rules) == ["a", "d", "e", "g"]


def test_boost_promotes_by_rank_factor(run: Run) -> None:
    # rows after removal: a b d e f g x; d is 3rd, so factor 4 makes it compete as rank 3/4 < 1
    boost = {"type": "boost", "property": "category", "equals": "bags", "factor": 4}
    assert run([boost]) == ["d", "a", "b", "e", "f", "g", "x"]
    # factor 3 makes d tie with a (rank 3/3 = 1): the originally better item stays ahead
    assert run([{**boost, "factor": 2.5}])[:2] == ["a", "d"]


def test_boost_is_indifferent_to_score_sign(run: Run) -> None:
    boost = {"type": "boost", "property": "category", "equals": "bags", "factor": 4}
    negative = list(np.linspace(-1, -100, len(ALL)))
    assert run([boost], scores=negative) == run([boost])


def test_bury_and_combined_factors(run: Run) -> None:
    bury = {"type": "bury", "property": "brand", "equals": "acme", "factor": 0.1}
    assert run([bury]) == ["b", "d", "e", "f", "g", "x", "a"]
    both = [bury, {"type": "boost", "property": "brand", "equals": "acme", "factor": 10}]
    assert run(both)[0] == "a"  # factors multiply: 0.1 * 10 = no change


def test_pin(run: Run) -> None:
    assert run([{"type": "pin", "item": "g", "position": 1}]) == ["g", "a", "b", "d", "e", "f", "x"]
    assert run([{"type": "pin", "item": "g", "position": 3}], k=4) == ["a", "b", "g", "d"]
    # pins of unavailable, filtered, unknown or non-candidate items are ignored
    assert run([{"type": "pin", "item": "c", "position": 1}], k=2) == ["a", "b"]
    assert run([{"type": "pin", "item": "not-in-model", "position": 1}], k=2) == ["a", "b"]
    assert run([{"type": "pin", "item": "g", "position": 1}], rows=["a", "b"]) == ["a", "b"]
    filt = {"type": "filter", "property": "brand", "equals": "zed"}
    assert run([filt, {"type": "pin", "item": "a", "position": 1}]) == ["b", "d"]


def test_pin_beyond_k_is_ignored_and_short_lists_compact(run: Run) -> None:
    assert run([{"type": "pin", "item": "a", "position": 5}], k=3) == ["a", "b", "d"]
    assert run([{"type": "pin", "item": "x", "position": 5}], k=3) == ["a", "b", "d"]
    short = run([{"type": "pin", "item": "a", "position": 5}], rows=["a", "b", "d"])
    assert short == ["b", "d", "a"]  # shown, as late as the list allows


def test_pin_clashes_first_listed_wins(run: Run) -> None:
    rules = [
        {"type": "pin", "item": "g", "position": 1},
        {"type": "pin", "item": "f", "position": 1},  # slot taken: f stays where it was
        {"type": "pin", "item": "g", "position": 2},  # item taken
        {"type": "pin", "item": "e", "position": 2},
    ]
    assert run(rules) == ["g", "e", "a", "b", "d", "f", "x"]


def test_cap_per_category(run: Run) -> None:
    cap = {"type": "cap_per_category", "max": 1}
    assert run([cap]) == ["a", "d", "e", "f", "x"]  # uncategorised f and x are uncapped
    assert run([cap], k=3) == ["a", "d", "e"]
    assert run([{"type": "cap_per_category", "max": 2}, cap]) == ["a", "d", "e", "f", "x"]


def test_cap_counts_pins_first(run: Run) -> None:
    rules = [{"type": "cap_per_category", "max": 1}, {"type": "pin", "item": "b", "position": 3}]
    assert run(rules) == ["d", "e", "b", "f", "x"]  # b holds the one shoes slot
    over = [*rules, {"type": "pin", "item": "a", "position": 4}]  # a second shoes pin: refused
    assert run(over) == ["d", "e", "b", "f", "x"]


def test_queries_are_independent_and_rows_deduplicated(
    table: ItemTable, item_ids: IdMap, make: Callable[..., Candidates], shown: Run
) -> None:
    cands = make([["b", "a", "b"], [], ["x", "c", "g"]])
    out = apply_rules(cands, [PinRule(item="g", position=1)], table, item_ids, 5)
    assert [shown(out, q) for q in range(3)] == [["b", "a"], [], ["g", "x"]]
    assert out.n_queries == 3
    original: dict[tuple[int, int], float] = {}
    for q, i, s in zip(cands.query, cands.items, cands.score, strict=True):
        original.setdefault((q, i), s)  # the first row of a duplicate is the one kept
    assert all(original[q, i] == s for q, i, s in zip(out.query, out.items, out.score, strict=True))


def test_compiled_plan_is_reusable(table: ItemTable, item_ids: IdMap, make: Any) -> None:
    plan = compile_rules(
        [FilterRule(property="brand", equals="zed"), CapPerCategoryRule(max=1)], item_ids
    )
    out = apply_rules(make([ALL]), plan, table, item_ids, 10)
    assert [ALL[i] for i in out.items] == ["b", "d"]


def test_misaligned_inputs_are_refused(table: ItemTable, item_ids: IdMap, make: Any) -> None:
    assert table.n_items == len(ALL) == 8
    for outside in (8, -1):  # an item index the table does not cover (7 is its last)
        with pytest.raises(ValidationError) as info:
            apply_rules(make([[0, outside]]), [], table, item_ids, 5)
        assert (info.value.field, info.value.reason) == (
            "items",
            "candidate item index outside the ItemTable (n_items=8)",
        )
    with pytest.raises(ValueError) as other:  # a table built for other ids
        apply_rules(make([[0]]), [], table, IdMap(["a"]), 5)
    assert str(other.value) == "item_ids has 1 ids, the ItemTable 8 items"
    shuffled = make([["a"], ["b"]])
    shuffled = shuffled.take(np.array([1, 0]))  # rows no longer grouped by query
    with pytest.raises(ValueError, match="grouped"):
        apply_rules(shuffled, [], table, item_ids, 5)


def test_rules_parse_from_toml_docstring_and_json() -> None:
    doc = rules_module.__doc__ or ""
    toml = doc[doc.index("key::") + 5 : doc.index("``apply_rules``")]
    toml = "\n".join(line.strip() for line in toml.splitlines())
    rules = parse_rules(tomllib.loads(toml)["rerank"]["rules"])
    assert [r.type for r in rules] == [
        "filter",
        "filter",
        "blocklist",
        "boost",
        "pin",
        "cap_per_category",
        "boost",  # with a time window: its offset date-times survive the JSON round trip
    ]
    assert rules[-1].start is not None and rules[-1].start.utcoffset() == timedelta(hours=1)
    again = parse_rules("[" + ",".join(r.model_dump_json(by_alias=True) for r in rules) + "]")
    assert again == rules


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"type": "nope"}, "rules[0].type"),
        ({"pin": "a", "position": 1}, "rules[0].type"),
        ({"type": "filter", "property": "price"}, "rules[0]"),  # no test
        ({"type": "filter", "property": "p", "equals": 1, "in": [1]}, "rules[0]"),
        ({"type": "filter", "property": "p", "min": 5, "max": 1}, "rules[0]"),
        ({"type": "filter", "property": "category", "min": 1}, "rules[0]"),
        ({"type": "filter", "property": "available", "equals": "yes"}, "rules[0]"),
        ({"type": "filter", "property": "p", "equals": 1, "colour": 2}, "rules[0].colour"),
        ({"type": "boost", "property": "p", "equals": 1, "factor": 0.5}, "rules[0].factor"),
        ({"type": "bury", "property": "p", "equals": 1, "factor": 1}, "rules[0].factor"),
        ({"type": "pin", "item": "a", "position": 0}, "rules[0].position"),
        ({"type": "cap_per_category", "max": 0}, "rules[0].max"),
        ({"type": "exclude", "items": "a"}, "rules[0].items"),
    ],
)
def test_bad_rules_name_the_field(rule: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_rules([rule])
    assert info.value.field == field


ONE_TEST = "give exactly one test: equals, in, or min/max"


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ({"property": "price"}, ONE_TEST),
        ({"property": "p", "equals": 1, "in": [1]}, ONE_TEST),
        ({"property": "p", "equals": 1, "max": 3}, ONE_TEST),
        ({"property": "p", "in": []}, "'in' lists no values: no item could pass"),
        ({"property": "p", "min": 5, "max": 1}, "min (5.0) is above max (1.0)"),
        ({"property": "category", "min": 1}, "'category' is not numeric: use equals or in"),
        ({"property": "tag", "max": 1}, "'tag' is not numeric: use equals or in"),
        ({"property": "available", "min": 0}, "'available' is not numeric: use equals or in"),
        ({"property": "tag", "in": ["a", 1]}, "'tag' values are strings"),
        ({"property": "category", "equals": True}, "'category' values are strings"),
        ({"property": "available", "equals": "yes"}, "'available' values are true or false"),
        ({"property": "available", "in": [True, 1]}, "'available' values are true or false"),
    ],
)
def test_bad_conditions_say_why(condition: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_rules([{"type": "filter", **condition}])
    assert (info.value.field, info.value.reason) == ("rules[0]", reason)


@pytest.mark.parametrize(
    "condition",
    [
        {"property": "p", "min": 1, "max": 1},  # a one-value range
        {"property": "p", "min": 1},
        {"property": "p", "max": 1},
        {"property": "available", "in": [True, False]},
        {"property": "category", "in": ["a", "b"]},
        {"property": "price", "equals": 1.5},
    ],
)
def test_good_conditions_parse(condition: dict[str, Any]) -> None:
    (rule,) = parse_rules([{"type": "filter", **condition}])
    assert rule.model_dump(mode="json", by_alias=True, exclude_defaults=True) == condition


def test_rules_that_are_not_a_list_name_rules_itself() -> None:
    with pytest.raises(ValidationError) as info:
        parse_rules('{"type": "pin", "item": "a", "position": 1}')  # one rule, not a list of them
    assert (info.value.field, info.value.reason) == ("rules", "Input should be a valid array")


def test_a_condition_over_no_items_matches_none(table: ItemTable) -> None:
    # a plain empty list (numpy reads it as float64) is still a list of item indices
    for rule in (FilterRule(property="brand", equals="acme"), FilterRule(property="p", min=1)):
        hits = rule.matches(table, [])  # type: ignore[arg-type]
        assert (hits.shape, hits.dtype) == ((0,), np.dtype(bool))
    assert FilterRule(property="brand", equals="acme").matches(table, [0, 1]).tolist() == [
        True,
        False,
    ]


def test_a_compiled_plan_holds_int32_item_indices_and_slots(item_ids: IdMap) -> None:
    # as candidates do; ids the model does not know are dropped, the first pin of a slot wins
    plan = compile_rules(
        parse_rules(
            [
                {"type": "blocklist", "items": ["d", "nope", "b"]},
                {"type": "pin", "item": "e", "position": 2},
                {"type": "pin", "item": "f", "position": 2},
                {"type": "pin", "item": "g", "position": 1},
            ]
        ),
        item_ids,
    )
    assert plan.banned.tolist() == [1, 3] and plan.banned.dtype == np.int32
    assert plan.pin_items.tolist() == [4, 6] and plan.pin_items.dtype == np.int32
    assert plan.pin_slots.tolist() == [1, 0] and plan.pin_slots.dtype == np.int32
    empty = compile_rules([], item_ids)
    assert (empty.banned.dtype, empty.pin_items.dtype) == (np.int32, np.int32)
