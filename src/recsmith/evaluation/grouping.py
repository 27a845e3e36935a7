"""Which group an item or a user belongs to, for the fairness measures of ``evaluate``.

Items group by their categories (the default) or by one catalogue property (``property:brand``);
users by training activity (the default) or by one profile property (``property:country``). The
spec strings are what ``--item-groups`` and ``--groups`` take, parsed here so that a bad one fails
before any model is fitted, naming the option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from recsmith.errors import ValidationError
from recsmith.evaluation.fairness import group_matrix
from recsmith.evaluation.parity import MISSING, activity_groups, property_groups
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """``kind`` is ``category``/``activity`` or ``property``; ``name`` the property's name."""

    kind: str
    name: str = ""

    @property
    def label(self) -> str:
        return f"property:{self.name}" if self.kind == "property" else self.kind


def parse_group_spec(text: str, option: str, default: str) -> GroupSpec:
    """``default`` (``category`` for items, ``activity`` for users) or ``property:NAME``."""
    kind, colon, name = text.strip().partition(":")
    if kind == default and not colon:
        return GroupSpec(default)
    if kind == "property" and name.strip():
        return GroupSpec("property", name.strip())
    raise ValidationError(option, f"{text!r}: expected {default} or property:NAME")


def item_labels(
    item_ids: np.ndarray, labels: Sequence[Sequence[str]], data: Interactions
) -> list[Sequence[str]]:
    """Per internal item index of ``data``, the labels of catalogue entry ``item_ids[j]``
    (``labels[j]``); none for an item the catalogue lacks."""
    out: list[Sequence[str]] = [()] * data.n_items
    rows = data.items.to_index(np.asarray(item_ids, dtype=object))
    for row, entry in zip(rows, labels, strict=True):  # per catalogue entry, metadata by nature
        if row >= 0:
            out[row] = entry
    return out


@dataclass(frozen=True, slots=True)
class FairnessInputs:
    """What the fairness measures need beyond the lists: the item-group membership
    (``fairness.group_matrix``; ``None`` when no item has a group) and each evaluated user's
    group label, with the grouping in words."""

    item_groups: sparse.csr_array | None
    item_group_names: list[str]
    item_grouping: str
    user_labels: np.ndarray
    user_grouping: str
    user_cut: str


def fairness_inputs(
    data: Interactions,
    user_ids: np.ndarray,
    *,
    item_spec: GroupSpec = GroupSpec("category"),
    user_spec: GroupSpec = GroupSpec("activity"),
    items: Sequence[Item] | None = None,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> FairnessInputs:
    """Groups of ``data``'s items and of the evaluated ``user_ids`` (the truth's users).

    Categories come from ``data.catalog``; a property needs the catalogue ``items``. Activity is
    each user's count of distinct training items (``parity.activity_groups``); a user property
    comes from ``profiles`` (user id → properties)."""
    if item_spec.kind == "property":
        catalog = list(items or ())
        raw = [
            ()
            if it.properties.get(item_spec.name) is None
            else (str(it.properties[item_spec.name]),)
            for it in catalog
        ]
        labels = item_labels(np.asarray([it.item_id for it in catalog], dtype=object), raw, data)
    elif data.catalog is not None:
        labels = item_labels(data.catalog.item_ids, data.catalog.categories, data)
    else:
        labels = [()] * data.n_items
    matrix, names = group_matrix(labels)
    rows = data.users.to_index(np.asarray(user_ids, dtype=object))
    if user_spec.kind == "property":
        user_labels = property_groups(user_ids, profiles or {}, user_spec.name)
        cut = f"user profile property {user_spec.name!r} ({MISSING} = no value)"
    else:
        user_labels, cut = activity_groups(np.diff(data.matrix.indptr)[rows])
    return FairnessInputs(
        matrix if matrix.shape[1] else None,
        names,
        item_spec.label,
        user_labels,
        user_spec.label,
        cut,
    )
