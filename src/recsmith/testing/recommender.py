"""RecommenderContract: the behaviour every model must show, as a reusable pytest base class.

Subclass it in a test module, set ``model_name`` (and ``params``), and every check runs for that
model. Plugin authors get the same suite. The oracle is a checkerboard: two groups of users, each
interacting only with its own group's items, so a personalised model must recommend within the
user's group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from recsmith.config import EventSettings
from recsmith.errors import NotFittedError
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.base import Recommender
from recsmith.models.registry import create

N_USERS = 40
N_ITEMS = 30


def checkerboard_events(
    n_users: int = N_USERS, n_items: int = N_ITEMS, seed: int = 0
) -> pd.DataFrame:
    """Users in group g = user % 2 view a random 60% of the items with item % 2 == g."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        own = np.arange(u % 2, n_items, 2)
        for i in rng.choice(own, size=int(len(own) * 0.6), replace=False):
            rows.append((f"u{u:03d}", f"i{i:03d}", int(1_700_000_000 + u * 100 + i)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    return frame.assign(
        event_id=[f"e{n}" for n in range(len(frame))],
        session_id=None,
        event_type="view",
        value=np.nan,
        context=None,
        ts=frame["ts"] * 1_000_000,
    )


def checkerboard_catalog(n_items: int = N_ITEMS, n_cold: int = 2) -> ItemCatalog:
    """Metadata that reveals each item's group, plus ``n_cold`` items nobody has touched yet."""
    items = [
        Item(
            item_id=f"i{i:03d}",
            categories=[f"group{i % 2}"],
            tags=[f"t{i % 2}", f"x{i}"],
            text=f"item {i} of group {'even' if i % 2 == 0 else 'odd'}",
        )
        for i in range(n_items + n_cold)
    ]
    return ItemCatalog.from_items(items)


def group_of(item_ids: np.ndarray) -> np.ndarray:
    return np.array([int(s[1:]) % 2 for s in item_ids])


class RecommenderContract:
    """Shared checks; subclasses set ``model_name`` and optionally ``params``/``personalised``."""

    model_name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    personalised: ClassVar[bool] = True

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> Interactions:
        return Interactions.from_events(
            checkerboard_events(), EventSettings().weights, catalog=checkerboard_catalog()
        )

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, data: Interactions) -> Recommender:
        return create(cls.model_name, **cls.params).fit(data)

    def test_lists_exclude_seen_items_and_are_sorted(
        self, model: Recommender, data: Interactions
    ) -> None:
        users = np.arange(data.n_users)
        top = model.recommend(users, 8, exclude=data.matrix)
        assert top.ids.shape == (data.n_users, 8)
        for row, u in zip(top.ids, users, strict=True):
            seen = set(data.matrix[[u]].indices)
            valid = row[row >= 0]
            assert not seen & set(valid), "a seen item was recommended"
            assert len(set(valid)) == len(valid), "duplicate item in one list"
        assert (np.diff(top.scores, axis=1)[np.isfinite(top.scores[:, 1:])] <= 1e-6).all()

    def test_lists_follow_the_users_group_or_are_shared(
        self, model: Recommender, data: Interactions
    ) -> None:
        users = np.arange(data.n_users)
        if not self.personalised:  # one list for everyone when nothing is excluded
            top = model.recommend(users, 5)
            assert (top.ids == top.ids[0]).all()
            return
        top = model.recommend(users, 5, exclude=data.matrix)
        user_group = group_of(data.users.external_ids)
        for row, g in zip(top.ids, user_group, strict=True):
            assert (group_of(data.items.to_external(row[row >= 0])) == g).all()

    def test_candidates_restrict_every_list(self, model: Recommender, data: Interactions) -> None:
        allowed = np.array([0, 3, 5, 7])
        top = model.recommend(np.arange(5), 10, candidates=allowed)
        assert set(top.ids[top.ids >= 0]) <= set(allowed)

    def test_k_beyond_catalog_pads_with_minus_one(
        self, model: Recommender, data: Interactions
    ) -> None:
        top = model.recommend(np.array([0]), data.n_items + 5, exclude=data.matrix[[0]])
        n_seen = data.matrix[[0]].nnz
        assert (top.ids[0] >= 0).sum() <= data.n_items - n_seen
        assert (top.ids[0, data.n_items - n_seen :] == -1).all()
        assert np.isneginf(top.scores[0, data.n_items - n_seen :]).all()

    def test_similar_items_never_return_the_item(
        self, model: Recommender, data: Interactions
    ) -> None:
        items = np.arange(data.n_items)
        top = model.similar_items(items, 5)
        assert not (top.ids == items[:, None]).any()

    def test_save_load_round_trip(
        self, model: Recommender, data: Interactions, tmp_path: Path
    ) -> None:
        model.save(tmp_path / "m")
        loaded = type(model).load(tmp_path / "m")
        a = model.recommend(np.arange(data.n_users), 5, exclude=data.matrix)
        b = loaded.recommend(np.arange(data.n_users), 5, exclude=data.matrix)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_allclose(a.scores, b.scores)
        assert loaded.get_params() == model.get_params()

    def test_unfitted_model_refuses(self) -> None:
        with pytest.raises(NotFittedError):
            create(self.model_name, **self.params).recommend(np.array([0]), 3)

    def test_fit_is_deterministic(self, model: Recommender, data: Interactions) -> None:
        again = create(self.model_name, **self.params).fit(data)
        np.testing.assert_array_equal(
            model.recommend(np.arange(10), 5).ids, again.recommend(np.arange(10), 5).ids
        )
