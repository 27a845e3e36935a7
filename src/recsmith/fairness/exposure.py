"""Exposure constraints: a floor and/or a ceiling on the share of a list an item group takes.

A group is any ``Condition`` (the same tests filters and boosts use), so "small providers", "one
brand" or "items under 10" are all groups::

    [[rerank.exposure]]
    name = "small providers"   # the label in notes and reports (default: the condition)
    property = "provider_size"
    equals = "small"
    at_least = 0.2             # at least ceil(0.2 · k) of the k slots: 2 of 10

    [[rerank.exposure]]
    property = "brand"
    equals = "acme"
    at_most = 0.3              # at most floor(0.3 · k): 3 of 10

Shares are of ``k`` (the list asked for), so one setting serves every list length. Rules win:
constraints only choose among the rows the rules let through, a pin counts for its group but is
never refused for a ceiling (a merchandiser's pin is a rule), and a floor the candidates cannot
meet (too few allowed items of the group) leaves the list filled with the best of the rest;
``unmet`` names such floors per query so the response can say so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import Field, model_validator

from recsmith.fairness.slots import Quotas
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.conditions import Condition
from recsmith.retrieval.candidates import Candidates

Share = float


class ExposureRule(Condition):
    """One group and its share bounds (module docstring)."""

    name: str | None = Field(None, min_length=1, max_length=64)
    at_least: Share | None = Field(None, ge=0, le=1)
    at_most: Share | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _bounded(self) -> ExposureRule:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give at_least and/or at_most (a share of the list, 0..1)")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least ({self.at_least}) is above at_most ({self.at_most})")
        return self

    @property
    def label(self) -> str:
        """How notes and reports name the group."""
        if self.name:
            return self.name
        test = "in " + ",".join(map(str, self.wanted())) if self.in_ else self.equals
        if test is None:
            test = f"{self.min}..{self.max}"
        return f"{'not ' if self.negate else ''}{self.property}={test}"

    def floor_count(self, k: int) -> int:
        """Items of ``k`` the group must have at least (the share rounded up)."""
        return math.ceil(self.at_least * k - 1e-9) if self.at_least else 0

    def ceiling_count(self, k: int) -> int:
        """Items of ``k`` the group may have at most (the share rounded down)."""
        return math.floor(self.at_most * k + 1e-9) if self.at_most is not None else k


def quotas(rules: Sequence[ExposureRule], table: ItemTable, items: np.ndarray, k: int) -> Quotas:
    """The constraints as counts for lists of ``k``, with each candidate row's groups."""
    member = np.zeros((len(items), len(rules)), bool)
    for g, rule in enumerate(rules):  # a handful of configured groups, each a vectorised test
        member[:, g] = rule.matches(table, items)
    return Quotas(
        member,
        np.asarray([r.floor_count(k) for r in rules], np.int64),
        np.asarray([r.ceiling_count(k) for r in rules], np.int64),
    )


def unmet(
    rules: Sequence[ExposureRule], final: Candidates, table: ItemTable, k: int
) -> list[list[str]]:
    """Per query of ``final`` (the served lists): the labels of floors its list falls short of."""
    out: list[list[str]] = [[] for _ in range(final.n_queries)]
    for rule in rules:
        need = rule.floor_count(k)
        if need == 0:
            continue
        held = np.bincount(final.query[rule.matches(table, final.items)], minlength=final.n_queries)
        for q in np.flatnonzero(held < need).tolist():  # only the queries that fell short
            out[q].append(rule.label)
    return out
