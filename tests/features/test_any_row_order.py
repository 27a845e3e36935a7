"""Every path that builds ``Interactions`` reads the events in the canonical order, so a single
model (``recsmith train --model X``) and an evaluation train and score the same on any row order
of the same events (``pipeline/test_canonical_order.py`` checks the pipeline).

Timestamps are cut to the day, so users tie at their latest time and items tie in counts; a
shuffled frame then numbered users and items otherwise, and tie rules decided by those numbers
(``popular``'s equal counts, item-kNN's equal similarities) ranked other items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.evaluation.runner import evaluate_models
from recsmith.evaluation.split import parse_split
from recsmith.events.validate import validate_events
from recsmith.features.interactions import Interactions, in_canonical_order
from recsmith.models.registry import create
from recsmith.monitoring.profile import data_profile
from recsmith.simulate import simulate

DAY_US = 86_400 * 1_000_000
WEIGHTS = dict(EventSettings().weights)
MODELS = ["popular", "itemknn", "ease"]


@pytest.fixture(scope="module")
def orders() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A simulated shop's events with day timestamps, in their order and shuffled."""
    events, rejected = validate_events(
        simulate(n_users=200, n_items=120, seed=5).events, EventSettings()
    )
    assert not rejected
    daily = events.assign(ts=events["ts"] // DAY_US * DAY_US)
    return daily, daily.sample(frac=1.0, random_state=3).reset_index(drop=True)


def _lists(events: pd.DataFrame, model: str, users: list[str]) -> list[tuple[list, bytes]]:
    """What ``recsmith train --model`` then ``recommend`` gives: items and score bytes per user."""
    bundle = ModelBundle.train(Interactions.from_events(events, WEIGHTS), create(model))
    got = bundle.recommend(users, 10)
    return [
        (list(items), np.asarray(scores, np.float32).tobytes())
        for items, scores in zip(got.item_ids, got.scores, strict=True)
    ]


@pytest.mark.parametrize("model", MODELS)
def test_a_single_model_recommends_the_same_on_any_row_order(
    orders: tuple[pd.DataFrame, pd.DataFrame], model: str
) -> None:
    daily, shuffled = orders
    users = sorted(daily["user_id"].unique().tolist())
    assert _lists(daily, model, users) == _lists(shuffled, model, users)


def test_an_evaluation_scores_the_same_on_any_row_order(
    orders: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    daily, shuffled = orders
    spec = parse_split("leave-last-out:1")
    (one, stats), (other, other_stats) = (
        evaluate_models(f, spec, MODELS, 10, WEIGHTS) for f in (daily, shuffled)
    )
    assert stats == other_stats
    for a, b in zip(one, other, strict=True):
        assert a.metrics == b.metrics, a.model  # every mean, to the last bit
        for metric, values in a.per_user.items():  # users in the same (canonical) numbering
            np.testing.assert_array_equal(values, b.per_user[metric], err_msg=a.model)


def _reference_order(events: pd.DataFrame) -> pd.DataFrame:
    """The canonical order by pandas' own stable multi-key sort: an independent oracle."""
    key = events.assign(_actor=events["user_id"].fillna("\x00" + events["session_id"].fillna("")))
    order = key.sort_values(
        ["ts", "_actor", "item_id", "event_type", "value"], kind="stable", na_position="last"
    ).index
    return events.loc[order].reset_index(drop=True)


@pytest.mark.parametrize(
    "prefix",
    [
        ["ts"],
        ["ts", "user_id"],
        ["ts", "user_id", "item_id"],
        ["ts", "user_id", "item_id", "event_type"],
    ],
)
def test_a_frame_sorted_by_the_first_keys_only_is_still_sorted_by_the_rest(prefix: list) -> None:
    """A log already in (time, user) order is the common case: the already-in-order check must
    look at every key, or such a frame keeps its row order among ties (a check of the first two
    keys passed every other test)."""
    rng = np.random.default_rng(4)
    n = 400
    events = pd.DataFrame(
        {
            "ts": rng.integers(0, 5, n) * DAY_US,
            "user_id": rng.choice(["u1", "u2", "u3"], n).astype(object),
            "session_id": None,
            "item_id": rng.choice(["a", "b", "c", "é"], n).astype(object),
            "event_type": rng.choice(["view", "purchase"], n).astype(object),
            "value": rng.choice([1.0, 2.0, np.nan], n),
        }
    )
    events = events.sort_values(prefix, kind="stable").reset_index(drop=True)
    got = in_canonical_order(events).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, _reference_order(events))


def test_the_profile_lists_event_types_by_name_in_any_row_order() -> None:
    events = pd.DataFrame({"event_type": ["view", "purchase"], "ts": [1, 2], "user_id": ["u", "u"]})
    assert list(data_profile(events)["event_types"]) == ["purchase", "view"]
    assert list(data_profile(events[::-1])["event_types"]) == ["purchase", "view"]
