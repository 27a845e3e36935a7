"""Configured rules are checked against the training catalogue before anything is fitted.

A filter no item can pass (``category in ["comedy"]`` where the catalogue says "Comedy", a
property no item has, a price range without ``--items``) would train cleanly and then serve an
empty list to everyone; a pin of an item with no events can never be a candidate, so it would
never show. Both are configuration mistakes, named here with the rule's place in the file.

A boost, bury or filter test that matches no item of the catalogue (``category = "toy"`` where
items say "toys") is harmless, since the rule changes nothing, but is most likely a typo: it is a
warning (``rule_warnings``), not an error, so a rule written ahead of the items it is for still
goes through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsmith.errors import ValidationError
from recsmith.ids import IdMap
from recsmith.pipeline.config import PipelineConfig
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.conditions import Condition
from recsmith.rerank.rules import BoostRule, BuryRule, FilterRule, PinRule, Rule


def check_rules(
    rules: list[Rule], table: ItemTable, item_ids: IdMap, where: str = "pipeline rerank.rules.{}"
) -> None:
    """ValidationError naming ``rerank.rules.N`` for a filter that no available item passes, or a
    pin of an item the training data does not have. ``where`` names rule N as its caller's input
    does (live rules and a request's rules are checked here too: ``recsmith.merchandising``)."""
    every = np.arange(len(item_ids))
    for n, rule in enumerate(rules):
        where_n = where.format(n)
        if (
            isinstance(rule, FilterRule)
            and not (table.available & rule.matches(table, every)).any()
        ):
            raise ValidationError(
                where_n,
                f"no available item of the catalogue passes this filter on {rule.property!r}, "
                "so every list would be empty (check the values' spelling and case, and that "
                "the catalogue was given with --items)",
            )
        if isinstance(rule, PinRule) and item_ids.to_index([rule.item])[0] < 0:
            raise ValidationError(
                f"{where_n}.item",
                f"{rule.item!r} has no events in the training data: never shown",
            )


@dataclass(frozen=True, slots=True)
class RuleWarning:
    """A valid rule (or one of its values) that matches no item: ``field`` names it as an
    error would (``rerank.rules[2].equals``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def rule_warnings(
    rules: list[Rule], table: ItemTable, item_ids: IdMap, where: str = "rerank.rules[{}]"
) -> list[RuleWarning]:
    """The boost and bury rules that match no item of the catalogue (available or not), and
    each value of an ``in`` list (boost, bury or filter) that no item has. A filter matching
    nothing at all is ``check_rules``' error, not repeated here."""
    every = np.arange(len(item_ids))
    found: list[RuleWarning] = []
    for n, rule in enumerate(rules):
        if not isinstance(rule, BoostRule | BuryRule | FilterRule):
            continue
        where_n = where.format(n)
        if isinstance(rule, BoostRule | BuryRule) and not rule.matches(table, every).any():
            found.append(
                RuleWarning(
                    f"{where_n}.{_test_field(rule)}",
                    f"this {rule.type} on {rule.property!r} matches no item of the catalogue, "
                    "so it changes nothing (check the values' spelling and case, and that the "
                    "catalogue has the property)",
                )
            )
            continue
        if rule.in_ is None or len(rule.in_) < 2 or rule.property == "available":
            continue
        for m, value in enumerate(rule.in_):
            alone = Condition(property=rule.property, equals=value)
            if not alone.matches(table, every).any():
                found.append(
                    RuleWarning(
                        f"{where_n}.in[{m}]",
                        f"no item of the catalogue has {rule.property!r} = {value!r}, so this "
                        "value never matches (check its spelling and case)",
                    )
                )
    return found


def pipeline_rule_warnings(
    config: PipelineConfig, table: ItemTable, item_ids: IdMap
) -> list[RuleWarning]:
    """``rule_warnings`` of a pipeline's own rules and of each placement's that sets its own,
    named as in the file (``rerank.rules[0].equals``, ``placements.home.rerank.rules[1].in[2]``)."""
    found = rule_warnings(list(config.rerank.rules), table, item_ids)
    for name, placement in config.placements.items():
        if "rules" in placement.rerank:
            rules = config.for_placement(name).rerank.rules
            found += rule_warnings(rules, table, item_ids, f"placements.{name}.rerank.rules[{{}}]")
    return found


def _test_field(rule: Condition) -> str:
    """The field that holds a condition's test: ``equals``, ``in``, else ``min`` or ``max``."""
    if rule.equals is not None:
        return "equals"
    if rule.in_ is not None:
        return "in"
    return "min" if rule.min is not None else "max"
