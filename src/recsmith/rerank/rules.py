"""Business rules: what a merchandiser may ask of a recommendation list, as validated config.

Rules come from configuration (``[[rerank.rules]]`` in TOML) or from a request (JSON); both parse
through one discriminated union on ``type``, so a typo in a rule is a 422 / config error naming the
field, not a silently ignored key::

    [[rerank.rules]]
    type = "filter"            # keep only matching items
    property = "price"
    min = 10
    max = 50

    [[rerank.rules]]
    type = "filter"
    property = "category"
    in = ["shoes", "bags"]     # any of the item's categories; negate = true for "none of"

    [[rerank.rules]]
    type = "blocklist"         # never shown (config); "exclude" is the same for a request
    items = ["sku-13", "sku-666"]

    [[rerank.rules]]
    type = "boost"             # "bury" with 0 < factor < 1 pushes down
    property = "brand"
    equals = "acme"
    factor = 2.0

    [[rerank.rules]]
    type = "pin"               # 1-based slot; only if the item is a candidate and allowed
    item = "sku-42"
    position = 1

    [[rerank.rules]]
    type = "cap_per_category"  # at most 2 items of one (primary) category
    max = 2

    [[rerank.rules]]           # any rule may have a time window (see ``window.py``)
    type = "boost"
    property = "category"
    equals = "toys"
    factor = 3.0
    start = 2026-12-05T00:00:00+01:00   # inclusive
    end = 2026-12-07T00:00:00+01:00     # exclusive

``apply_rules`` runs them over a batch of candidates; the order and the guarantee (nothing
unavailable, filtered, excluded or blocklisted is ever shown) are documented in ``plan.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pydantic
from pydantic import ConfigDict, Field, StrictStr, TypeAdapter

from recsmith.errors import ValidationError
from recsmith.ids import IdMap
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.conditions import Condition
from recsmith.rerank.plan import RulePlan
from recsmith.rerank.window import Window
from recsmith.retrieval.candidates import Candidates
from recsmith.validation_reasons import reworded, unknown_key

Factor = Annotated[float, Field(allow_inf_nan=False)]


class _Rule(Window):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterRule(Condition, Window):
    """Keep only items meeting the condition (several filters: all must hold)."""

    type: Literal["filter"] = "filter"


class ExcludeRule(_Rule):
    """Never show these item ids (typically per request: already bought, just shown)."""

    type: Literal["exclude"] = "exclude"
    items: tuple[StrictStr, ...]


class BlocklistRule(_Rule):
    """Never show these item ids (typically from config: recalled, legal, offensive). Same effect
    as ``exclude``; kept apart so the config says why an item is gone."""

    type: Literal["blocklist"] = "blocklist"
    items: tuple[StrictStr, ...]


class BoostRule(Condition, Window):
    """Multiply the rank-based relevance of matching items by ``factor`` > 1 (see ``plan.py``)."""

    type: Literal["boost"] = "boost"
    factor: Factor = Field(gt=1)


class BuryRule(Condition, Window):
    """Like boost with 0 < ``factor`` < 1: matching items sink but stay eligible."""

    type: Literal["bury"] = "bury"
    factor: Factor = Field(gt=0, lt=1)


class PinRule(_Rule):
    """Show ``item`` at 1-based ``position`` when it is among a query's candidates and allowed; a
    pin never brings in an item retrieval did not propose, nor one a filter removed."""

    type: Literal["pin"] = "pin"
    item: StrictStr
    position: int = Field(ge=1, le=10_000)


class CapPerCategoryRule(_Rule):
    """At most ``max`` items of one primary category in a list (items without one: uncapped)."""

    type: Literal["cap_per_category"] = "cap_per_category"
    max: int = Field(ge=1)


Rule = Annotated[
    FilterRule | ExcludeRule | BlocklistRule | BoostRule | BuryRule | PinRule | CapPerCategoryRule,
    Field(discriminator="type"),
]
_RULES: TypeAdapter[list[Rule]] = TypeAdapter(list[Rule])
RULE_TYPES = ("filter", "exclude", "blocklist", "boost", "bury", "pin", "cap_per_category")


def parse_rules(data: Sequence[Mapping[str, Any]] | str | bytes) -> list[Rule]:
    """Rules from parsed TOML/JSON (a list of tables) or a JSON string.

    Raises ``recsmith.errors.ValidationError`` whose field reads like ``rules[2].factor``.
    """
    try:
        if isinstance(data, str | bytes):
            return _RULES.validate_json(data)
        return _RULES.validate_python(list(data))
    except pydantic.ValidationError as exc:
        raise rule_error(exc.errors()[0], list[Rule], ("rules",)) from None


def rule_error(
    err: Mapping[str, Any], root: Any, prefix: Sequence[int | str] = ()
) -> ValidationError:
    """A pydantic error met validating ``root`` (the rule list, or a rule file's model) as the
    ValidationError to raise: ``rules[0].type: required, one of filter, …`` for a rule without
    its type, ``rules[0].inn: unknown key (did you mean in?)`` for a typo, worded as a pipeline
    file words them (``validation_reasons``)."""
    loc, reason = reworded(err, RULE_TYPES)
    if err["type"] == "extra_forbidden":
        reason = unknown_key(root, loc)
    return ValidationError(field_path((*prefix, *loc)), reason)


def field_path(loc: Sequence[int | str]) -> str:
    """A validation error's path as a field name: ``('rules', 2, 'boost', 'factor')`` ->
    ``rules[2].factor`` (indices in brackets; the rule union's tag, not a field, left out), so
    a pipeline file, a live rule file and a request name a rule's field alike."""
    out = ""
    after_index = False
    for part in loc:
        if isinstance(part, int):
            out, after_index = f"{out}[{part}]", True
        elif after_index and part in RULE_TYPES:
            after_index = False
        else:
            out, after_index = (f"{out}.{part}" if out else str(part)), False
    return out


def compile_rules(rules: Iterable[Rule], item_ids: IdMap) -> RulePlan:
    """Resolve rules against the model's item ids. Unknown ids are dropped: no candidate can carry
    them. Of two pins for one item or one position, the first listed wins; of several caps, the
    tightest."""
    rules = list(rules)
    banned = [i for r in rules if isinstance(r, ExcludeRule | BlocklistRule) for i in r.items]
    idx = item_ids.to_index(banned)  # int32, empty for no ids
    pins = [r for r in rules if isinstance(r, PinRule)]
    pin_idx = item_ids.to_index([p.item for p in pins])
    pin_items: list[int] = []
    pin_slots: list[int] = []
    for pin, item in zip(pins, pin_idx, strict=True):
        if item >= 0 and item not in pin_items and pin.position - 1 not in pin_slots:
            pin_items.append(int(item))
            pin_slots.append(pin.position - 1)
    caps = [r.max for r in rules if isinstance(r, CapPerCategoryRule)]
    return RulePlan(
        banned=np.unique(idx[idx >= 0]).astype(np.int32),
        filters=tuple(r for r in rules if isinstance(r, FilterRule)),
        boosts=tuple((r, math.log(r.factor)) for r in rules if isinstance(r, BoostRule | BuryRule)),
        pin_items=np.asarray(pin_items, np.int32),
        pin_slots=np.asarray(pin_slots, np.int32),
        cap=min(caps) if caps else None,
    )


def apply_rules(
    cands: Candidates,
    rules: Iterable[Rule] | RulePlan,
    table: ItemTable,
    item_ids: IdMap,
    k: int,
) -> Candidates:
    """Apply business rules to every query of ``cands`` and cut to ``k`` rows (no diversity; see
    ``recsmith.rerank.rerank`` for MMR). Output rows keep their scores; row order is the result."""
    if len(item_ids) != table.n_items:
        raise ValueError(f"item_ids has {len(item_ids)} ids, the ItemTable {table.n_items} items")
    plan = rules if isinstance(rules, RulePlan) else compile_rules(rules, item_ids)
    return plan.apply(cands, table, k)
