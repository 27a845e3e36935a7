"""Declared properties of items or users (brand, price band, age, occupation…) as ranker columns.

Which properties become features is chosen once, at training, from the records alone (never from
events): the ``cap`` most frequently declared ones, ties by name, so the same catalogue and
profiles always give the same columns, offline and online. A property whose every value is a
number stays a number; any other is categorical and its values get codes that are unique across
all columns (one sparse matrix then holds every categorical column's per-user shares). A record
without the property is NaN: a missing value, never a constant that would pass for a real one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Price bands learnt from the catalogue's price quantiles (quintiles).
PRICE_BANDS = 5
#: A text property with more distinct values than this share of the records having it is an
#: identifier (nearly one value per record), not a feature.
IDENTIFIER_SHARE = 0.9
_UNSAFE = re.compile(r"[^0-9A-Za-z_]")


@dataclass(frozen=True, slots=True)
class PropertyColumns:
    """``values[r, p]``: record r's number for numeric column p, or the code of its value for a
    categorical one (codes count from 0 over all columns, ``n_codes`` of them); NaN = none."""

    names: np.ndarray  # str [p]
    categorical: np.ndarray  # bool [p]
    values: np.ndarray  # float32 [n_records, p]
    n_codes: int

    @classmethod
    def empty(cls, n_records: int) -> PropertyColumns:
        return cls(np.zeros(0, str), np.zeros(0, bool), np.zeros((n_records, 0), np.float32), 0)

    def first(self, n: int) -> PropertyColumns:
        """The ``n`` most declared columns (they come first): what a smaller cap chooses."""
        return PropertyColumns(
            self.names[:n], self.categorical[:n], self.values[:, :n], self.n_codes
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def property_columns(
    records: Sequence[Mapping[str, Any] | None], cap: int, skip: frozenset[str] = frozenset()
) -> PropertyColumns:
    """The ``cap`` most declared properties of ``records`` (``None``: no record) as columns (see
    the module docstring); properties in ``skip`` are left out (already features of their own),
    and so are identifiers: text with more distinct values than ``IDENTIFIER_SHARE`` of the
    records that have one (a URL, a title), since no affinity or segment forms around a value
    almost nothing shares."""
    counts = Counter(
        key for rec in records if rec for key, v in rec.items() if v is not None and key not in skip
    )
    columns: list[tuple[str, np.ndarray, bool]] = []  # name, values, categorical
    offset = 0
    for key in sorted(counts, key=lambda k: (-counts[k], k)):
        if len(columns) == cap:
            break
        raw = [None if rec is None else rec.get(key) for rec in records]
        if all(_is_number(v) for v in raw if v is not None):
            columns.append((key, np.asarray([np.nan if v is None else v for v in raw]), False))
            continue
        text = pd.Series([None if v is None else str(v) for v in raw], dtype=object)
        codes, uniques = pd.factorize(text, sort=True)
        if len(uniques) > IDENTIFIER_SHARE * counts[key]:
            continue
        columns.append((key, np.where(codes >= 0, codes + offset, np.nan), True))
        offset += len(uniques)
    values = np.full((len(records), len(columns)), np.nan, np.float32)
    for p, column in enumerate(columns):
        values[:, p] = column[1]
    names = np.asarray([c[0] for c in columns], dtype=str)
    return PropertyColumns(names, np.asarray([c[2] for c in columns], bool), values, offset)


def price_bands(price: np.ndarray) -> list[str | None]:
    """Each price's band (``band1`` cheapest … ``band5``) between the quintiles of the known
    prices, None where the price is unknown: a categorical property a user can have an affinity
    for, where a raw price compares a phone with a cable."""
    known = np.isfinite(price)
    if not known.any():
        return [None] * len(price)
    edges = np.quantile(price[known], np.linspace(0, 1, PRICE_BANDS + 1)[1:-1])
    band = np.searchsorted(edges, price, side="right") + 1
    return [f"band{b}" if ok else None for b, ok in zip(band.tolist(), known.tolist(), strict=True)]


def feature_label(name: str) -> str:
    """A property name as LightGBM accepts it in a feature name (letters, digits and ``_``)."""
    return _UNSAFE.sub("_", name)
