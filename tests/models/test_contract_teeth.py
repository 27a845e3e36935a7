"""The RecommenderContract fails broken models: each check is run against a model that answers
nothing (every score −∞, the lists a bare ``recommend`` of a broken model returns) and one that
scores at random, and must raise. A contract these models passed would certify nothing."""

from typing import ClassVar, Self

import numpy as np
import pytest

from recsmith.features.interactions import Interactions
from recsmith.models.base import ModelConfig, Recommender
from recsmith.testing.recommender import RecommenderContract, checkerboard_split


class _Fixed(Recommender):
    """Scores every (row, item) cell with ``_cells``; learns only the catalogue size."""

    name = "fixed"
    Config = ModelConfig
    n_items_: np.ndarray

    def fit(self, data: Interactions) -> Self:
        self.n_items_ = np.asarray(data.n_items)
        return self

    @property
    def n_items(self) -> int:
        return int(self.n_items_)

    def _cells(self, n_rows: int) -> np.ndarray:
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._cells(len(users))

    def _item_scores(self, items: np.ndarray) -> np.ndarray:
        return self._cells(len(items))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"n_items_": self.n_items_}


class NothingModel(_Fixed):
    def _cells(self, n_rows: int) -> np.ndarray:
        return np.full((n_rows, self.n_items), -np.inf, np.float32)


class RandomModel(_Fixed):
    def _cells(self, n_rows: int) -> np.ndarray:
        return np.random.default_rng(n_rows).random((n_rows, self.n_items), np.float32)


class Contract(RecommenderContract):
    """The contract as a personalised model's test class would run it."""

    model_name = "unused"
    personalised: ClassVar[bool] = True


SPLIT = checkerboard_split()
ON_DATA = [
    "test_lists_are_full_exclude_seen_items_and_are_sorted",
    "test_lists_follow_the_users_group_or_are_shared",
    "test_candidates_restrict_every_list",
    "test_k_beyond_catalog_lists_every_unseen_item_then_pads",
    "test_similar_items_are_full_and_within_the_group",
]
HELD_OUT = "test_held_out_item_is_hit_more_often_than_by_popular"


@pytest.mark.parametrize("check", [*ON_DATA, HELD_OUT])
def test_a_model_that_answers_nothing_fails_every_check(check: str) -> None:
    run_check(check, NothingModel().fit(SPLIT[0]))


@pytest.mark.parametrize(
    "check",
    [
        "test_lists_follow_the_users_group_or_are_shared",
        HELD_OUT,
        "test_similar_items_are_full_and_within_the_group",
    ],
)
def test_a_model_that_guesses_fails_the_checks_of_taste(check: str) -> None:
    run_check(check, RandomModel().fit(SPLIT[0]))


def run_check(check: str, model: Recommender) -> None:
    method = getattr(Contract(), check)
    with pytest.raises(AssertionError):
        if check in ON_DATA:
            method(model, SPLIT[0])
        else:
            method(model, SPLIT)
