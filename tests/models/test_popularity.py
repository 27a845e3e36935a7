"""``popular`` and ``trending`` against hand-made frames whose counts disagree: distinct users,
raw event counts and decayed event counts each rank the three items differently, so a model
counting the wrong thing cannot produce the expected scores by accident."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsmith.config import EventSettings
from recsmith.features.interactions import Interactions
from recsmith.models.registry import create

NOW = 1_700_000_000_000_000  # microseconds
DAY = 86_400_000_000

# (user, item, age in days). Item a: one user, four views a week old. Item b: three users, one
# view each, today. Item c: two users, one view today and one two weeks old.
EVENTS = [
    *[("u1", "a", 7)] * 4,
    ("u1", "b", 0),
    ("u2", "b", 0),
    ("u3", "b", 0),
    ("u2", "c", 0),
    ("u3", "c", 14),
]
# Hand-computed: distinct users, events, and events weighed 0.5 ** (age / 7).
DISTINCT_USERS = {"a": 1, "b": 3, "c": 2}
EVENT_COUNTS = {"a": 4, "b": 3, "c": 2}
DECAYED_7_DAYS = {"a": 4 * 0.5, "b": 3 * 1.0, "c": 1.0 + 0.25}


@pytest.fixture(scope="module")
def data() -> Interactions:
    frame = pd.DataFrame(EVENTS, columns=["user_id", "item_id", "age"])
    frame = frame.assign(
        ts=NOW - frame.pop("age") * DAY,
        event_id=[f"e{n}" for n in range(len(frame))],
        session_id=None,
        event_type="view",
        value=np.nan,
        context=None,
    )
    return Interactions.from_events(frame, EventSettings().weights)


def scores_by_item(name: str, data: Interactions, **params: float) -> dict[str, float]:
    top = create(name, **params).fit(data).recommend(np.array([0]), data.n_items)
    return dict(zip(data.items.to_external(top.ids[0]), top.scores[0].tolist(), strict=True))


def test_popular_counts_distinct_users_not_events(data: Interactions) -> None:
    scores = scores_by_item("popular", data)
    assert scores == pytest.approx(DISTINCT_USERS, abs=1e-6)
    assert list(scores) == ["b", "c", "a"]  # events would give a, b, c


def test_trending_weighs_events_by_a_seven_day_half_life(data: Interactions) -> None:
    scores = scores_by_item("trending", data)
    assert scores == pytest.approx(DECAYED_7_DAYS, abs=1e-6)
    assert list(scores) == ["b", "a", "c"]  # undecayed events would give a, b, c


def test_popular_with_a_half_life_counts_decayed_events(data: Interactions) -> None:
    assert scores_by_item("popular", data, half_life_days=7.0) == pytest.approx(
        DECAYED_7_DAYS, abs=1e-6
    )
    # a half-life far longer than the data: every event counts (almost) fully
    assert scores_by_item("popular", data, half_life_days=1e9) == pytest.approx(
        EVENT_COUNTS, abs=1e-6
    )


def test_popular_breaks_ties_by_index_even_where_float32_cannot_tell_them_apart() -> None:
    """400 items, each seen by the same 1,000 users except the last 50 (seen by 1,001): counts
    near 1,000 leave no float32 room for a 1e-9 index term, so only an exact rank orders the 350
    tied items. Hand-derived expectation: the 50 most seen items, then the tied ones by index,
    whether k covers the catalogue (plain sort) or not (argpartition) and whatever is excluded."""
    n_items, n_users = 400, 1001
    users = np.repeat(np.arange(1000), n_items)
    items = np.tile(np.arange(n_items), 1000)
    users = np.r_[users, np.full(50, 1000)]
    items = np.r_[items, np.arange(350, 400)]
    frame = pd.DataFrame(
        {
            "user_id": [f"u{u:05d}" for u in users],
            "item_id": [f"i{i:04d}" for i in items],
            "ts": NOW,
            "event_id": [f"e{n}" for n in range(len(users))],
            "session_id": None,
            "event_type": "view",
            "value": np.nan,
            "context": None,
        }
    )
    data = Interactions.from_events(frame, EventSettings().weights)
    assert data.n_users == n_users
    model = create("popular").fit(data)
    ext = data.items.to_external
    heads = [f"i{i:04d}" for i in range(350, 400)]
    tied = [f"i{i:04d}" for i in range(350)]
    for k in (60, 120, n_items):
        top = model.recommend(np.array([0, 1]), k)
        for row in range(2):
            assert list(ext(top.ids[row])) == (heads + tied)[:k]
        assert top.scores[0, :50].tolist() == [1001.0] * 50  # scores stay the counts
        assert top.scores[0, 50:k].tolist() == [1000.0] * (k - 50)
    # excluding tied items skips them without disturbing the order of the rest
    drop = sparse.csr_array(
        (
            np.ones(3, np.float32),
            (np.zeros(3, int), data.items.to_index(["i0000", "i0002", "i0005"])),
        ),
        shape=(1, n_items),
    )
    top = model.recommend(np.array([0]), 60, exclude=drop)
    expected = heads + [t for t in tied if t not in {"i0000", "i0002", "i0005"}]
    assert list(ext(top.ids[0])) == expected[:60]
