"""Configured rules are checked against the training catalogue before anything is fitted.

A filter no item can pass (``category in ["comedy"]`` where the catalogue says "Comedy", a
property no item has, a price range without ``--items``) would train cleanly and then serve an
empty list to everyone; a pin of an item with no events can never be a candidate, so it would
never show. Both are configuration mistakes, named here with the rule's place in the file.
"""

from __future__ import annotations

import numpy as np

from recsmith.errors import ValidationError
from recsmith.ids import IdMap
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.rules import FilterRule, PinRule, Rule


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
