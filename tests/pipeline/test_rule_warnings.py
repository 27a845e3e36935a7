"""Rules that match no item are warned about, not refused: ``rule_warnings`` against a catalogue
small enough to check by hand, and training recording them in the manifest.

Catalogue: ``a`` toys, price 10; ``b`` books, price 30; ``c`` toys and books, no price."""

from __future__ import annotations

import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.ids import IdMap
from recsmith.pipeline.artifact import train_pipeline
from recsmith.pipeline.config import PipelineConfig
from recsmith.pipeline.rule_check import RuleWarning, rule_warnings
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.rules import parse_rules

ITEMS = [
    Item(item_id="a", categories=["toys"], properties={"price": 10.0}),
    Item(item_id="b", categories=["books"], properties={"price": 30.0}),
    Item(item_id="c", categories=["toys", "books"]),
]
IDS = IdMap(["a", "b", "c"])


def _warnings(rules: list[dict[str, object]]) -> list[tuple[str, str]]:
    table = ItemTable.from_items(ITEMS, IDS)
    found = rule_warnings(parse_rules(rules), table, IDS)
    assert all(isinstance(w, RuleWarning) for w in found)
    return [(w.field, w.message) for w in found]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"type": "boost", "property": "category", "equals": "toy", "factor": 2.0}, "equals"),
        ({"type": "bury", "property": "category", "in": ["Toys", "Books"], "factor": 0.5}, "in"),
        ({"type": "boost", "property": "price", "min": 31.0, "factor": 2.0}, "min"),
        ({"type": "boost", "property": "price", "max": 9.5, "factor": 2.0}, "max"),
        ({"type": "boost", "property": "brand", "equals": "acme", "factor": 2.0}, "equals"),
    ],
)
def test_a_boost_or_bury_matching_no_item_is_named_by_its_test_field(
    rule: dict[str, object], field: str
) -> None:
    [(named, message)] = _warnings([{"type": "exclude", "items": ["a"]}, rule])
    assert named == f"rerank.rules[1].{field}"
    assert f"this {rule['type']} on {rule['property']!r} matches no item" in message


@pytest.mark.parametrize(
    "rule",
    [
        {"type": "boost", "property": "category", "equals": "toys", "factor": 2.0},
        {"type": "boost", "property": "price", "min": 30.0, "max": 30.0, "factor": 2.0},  # b
        # everything is a toy or a book, so "not toys" still matches b
        {"type": "bury", "property": "category", "equals": "toys", "negate": True, "factor": 0.5},
        {"type": "filter", "property": "category", "in": ["toys", "books"]},
        {"type": "filter", "property": "available", "in": [True, False]},
        {"type": "exclude", "items": ["not-an-item"]},  # a recall ahead of the item: no warning
        {"type": "pin", "item": "a", "position": 1},
    ],
)
def test_a_rule_that_matches_some_item_is_not_warned_about(rule: dict[str, object]) -> None:
    assert _warnings([rule]) == []


def test_each_value_of_an_in_list_that_no_item_has_is_named_by_its_index() -> None:
    found = _warnings(
        [
            {"type": "filter", "property": "category", "in": ["toys", "bookz", "Books"]},
            {"type": "boost", "property": "price", "in": [10.0, 11.0], "factor": 2.0},
        ]
    )
    assert [field for field, _ in found] == [
        "rerank.rules[0].in[1]",
        "rerank.rules[0].in[2]",
        "rerank.rules[1].in[1]",
    ]
    assert "'category' = 'bookz'" in found[0][1] and "'price' = 11.0" in found[2][1]


def test_training_records_the_warnings_in_the_manifest_and_still_trains() -> None:
    users, items = [f"u{n}" for n in range(6)], ["a", "b", "c"]
    pairs = [(u, i) for n, u in enumerate(users) for i in items[: 1 + n % 3]]
    records = [
        {
            "event_id": f"e{n}",
            "user_id": u,
            "item_id": i,
            "event_type": "view",
            "timestamp": f"2026-01-01T00:{n:02d}:00Z",
        }
        for n, (u, i) in enumerate(pairs)
    ]
    frame, rejected = validate_events(records, EventSettings())
    assert not rejected
    typo = {"type": "boost", "property": "category", "equals": "toy", "factor": 2.0}
    config = PipelineConfig.model_validate(
        {
            "retrieval": {"sources": [{"name": "pop", "model": "popular", "quota": 10}]},
            "ranking": {"enabled": False},
            "rerank": {"rules": [typo]},
            "placements": {
                "home": {"rerank": {"rules": [typo | {"equals": "toys"}, typo]}},
                "cart": {"rerank": {"diversity": 0.5}},  # inherits the typo: named once
            },
        }
    )
    trained = train_pipeline(
        config, pd.DataFrame(frame), dict(EventSettings().weights), items=ITEMS
    )
    assert [w["field"] for w in trained.manifest["rule_warnings"]] == [
        "rerank.rules[0].equals",
        "placements.home.rerank.rules[1].equals",
    ]
    assert len(trained.answer(["u0"], 2).lists.item_ids[0]) == 2  # b and c: it trained
