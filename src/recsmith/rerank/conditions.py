"""Condition: "which items does this rule touch?", shared by filter, boost and bury rules.

A condition names one attribute and one test: ``equals`` a value, ``in`` a list, or a numeric range
``min``..``max`` (inclusive, either end optional); ``negate`` flips it. Three attribute names are
reserved because they are not free-form properties: ``available`` (the catalogue flag), ``category``
and ``tag`` (true when *any* of the item's categories / tags is listed). Anything else is a key of
``Item.properties``.

Missing data never passes a positive test: an item without a price is not "in 10..50", an item
without a brand does not "equal" any brand. So a filter keeps only items known to satisfy it, and
``negate`` is the explicit way to say "everything except".
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

from recsmith.errors import ValidationError
from recsmith.rerank.catalog_view import ItemTable, value_key

#: A value a rule compares against (booleans stay booleans, see ``value_key``).
Value = StrictBool | StrictInt | StrictFloat | StrictStr
Bound = Annotated[float, Field(allow_inf_nan=False)]

#: Attribute names that are not ``Item.properties`` keys.
RESERVED = ("available", "category", "tag")


class Condition(BaseModel):
    """One test on one item attribute (see module docstring)."""

    # strict: a pipeline file's "yes" or "10" is a mistake to name, not a value to guess at
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)

    property: StrictStr = Field(min_length=1, description="available, category, tag or a property")
    equals: Value | None = None
    in_: tuple[Value, ...] | None = Field(None, alias="in", strict=False)  # a list arrives
    min: Bound | None = None
    max: Bound | None = None
    negate: bool = False

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        ranged = self.min is not None or self.max is not None
        tests = (self.equals is not None) + (self.in_ is not None) + ranged
        if tests != 1:
            raise ValueError("give exactly one test: equals, in, or min/max")
        if self.in_ is not None and not self.in_:
            raise ValueError("'in' lists no values: no item could pass")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if ranged and self.property in RESERVED:
            raise ValueError(f"{self.property!r} is not numeric: use equals or in")
        wanted = self.wanted()
        if self.property in ("category", "tag") and not all(isinstance(v, str) for v in wanted):
            raise ValueError(f"{self.property!r} values are strings")
        if self.property == "available" and not all(isinstance(v, bool) for v in wanted):
            raise ValueError("'available' values are true or false")
        return self

    def wanted(self) -> tuple[Value, ...]:
        """The listed values (``equals`` as a one-element list); empty for a range."""
        if self.equals is not None:
            return (self.equals,)
        return self.in_ or ()

    def matches(self, table: ItemTable, items: np.ndarray) -> np.ndarray:
        """bool [len(items)]: which of the model items ``items`` satisfy the condition."""
        items = np.asarray(items, np.int64)
        check_items(table, items)
        return self.matches_checked(table, items)

    def matches_checked(self, table: ItemTable, items: np.ndarray) -> np.ndarray:
        """``matches`` for item indices already checked (``check_items``): ``RulePlan`` checks a
        batch's rows once for all its conditions, not once per condition."""
        hit = self._positive(table, items)
        return ~hit if self.negate else hit

    def _positive(self, table: ItemTable, items: np.ndarray) -> np.ndarray:
        name = self.property
        if name == "available":
            wanted = self.wanted()  # bools, never empty (validated)
            return np.where(table.available[items], True in wanted, False in wanted)
        if name in ("category", "tag"):
            return table.in_any(name, items, [str(v) for v in self.wanted()])
        if self.min is not None or self.max is not None:
            x = table.numeric(name)[items]
            lo = -math.inf if self.min is None else self.min
            hi = math.inf if self.max is None else self.max
            return (x >= lo) & (x <= hi)  # NaN (absent) compares False
        codes, lookup = table.codes(name)
        want = [lookup[k] for k in map(value_key, self.wanted()) if k in lookup]
        return np.isin(codes[items], want)


def check_items(table: ItemTable, items: np.ndarray) -> None:
    """Refuse item indices the table does not cover: a table built from another IdMap than the
    model's would silently apply rules to the wrong items."""
    if len(items) and (int(items.min()) < 0 or int(items.max()) >= table.n_items):
        raise ValidationError(
            "items", f"candidate item index outside the ItemTable (n_items={table.n_items})"
        )
