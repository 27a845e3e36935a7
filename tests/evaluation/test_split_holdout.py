"""Random and user-holdout splits, and validation splits carved out of a split's train part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsmith.errors import ValidationError
from recsmith.evaluation.split import (
    Split,
    actor_keys,
    leave_last_out,
    parse_split,
    random_holdout,
    temporal_split,
    user_holdout,
    validation_split,
)
from recsmith.events.schema import EVENT_COLUMNS

T0 = 1_700_000_000_000_000  # Unix microseconds


def events(rows: list[tuple[str, str | None, str | None, int]]) -> pd.DataFrame:
    """Canonical frame from (event_id, user_id, session_id, ts offset in seconds) rows."""
    return pd.DataFrame(
        {
            "event_id": [r[0] for r in rows],
            "user_id": pd.Series([r[1] for r in rows], dtype=object),
            "session_id": pd.Series([r[2] for r in rows], dtype=object),
            "item_id": [f"i{n}" for n in range(len(rows))],
            "event_type": "view",
            "value": np.nan,
            "ts": np.array([T0 + r[3] * 1_000_000 for r in rows], dtype=np.int64),
            "context": None,
        },
        columns=list(EVENT_COLUMNS),
    )


def many(n_events: int, n_users: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n_events)
    ts = rng.integers(0, 10_000, n_events)
    return events(
        [
            (f"e{i:06d}", f"u{u}", None, int(t))
            for i, (u, t) in enumerate(zip(users, ts, strict=True))
        ]
    )


def ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["event_id"])


def assert_partition(split: Split, frame: pd.DataFrame) -> None:
    assert list(split.train.columns) == list(frame.columns) == list(split.test.columns)
    assert split.train.index.intersection(split.test.index).empty
    both = split.train.index.union(split.test.index)
    assert both.sort_values().equals(frame.index.sort_values())


def same(a: Split, b: Split) -> bool:
    return ids(a.train) == ids(b.train) and ids(a.test) == ids(b.test)


# ---------------------------------------------------------------- random


def test_random_holdout_fraction_is_roughly_right() -> None:
    frame = many(20_000, 500)
    split = random_holdout(frame, 0.2, seed=3)
    assert split.name == "random:0.2"
    assert_partition(split, frame)
    # Binomial(20000, 0.2): sd = sqrt(20000 * 0.16) ~ 57 events, so +-1% (200) is > 3 sd.
    assert abs(len(split.test) / len(frame) - 0.2) < 0.01


def test_random_holdout_is_reproducible_and_ignores_row_order() -> None:
    frame = many(500, 20)
    first = random_holdout(frame, 0.3, seed=7)
    assert same(first, random_holdout(frame, 0.3, seed=7))
    assert same(first, random_holdout(frame.sample(frac=1.0, random_state=0), 0.3, seed=7))
    assert not same(first, random_holdout(frame, 0.3, seed=8))


def test_random_holdout_of_empty_frame_and_bad_fraction() -> None:
    split = random_holdout(events([]))
    assert split.train.empty and split.test.empty
    for bad in (0.0, 1.0, -0.5, float("nan"), True):
        with pytest.raises(ValidationError) as info:
            random_holdout(events([("a", "u", None, 0)]), bad)
        assert info.value.field == "split"


# ---------------------------------------------------------------- user holdout


def reference_user_holdout(
    frame: pd.DataFrame, fraction: float, seed: int, fold_in: float
) -> set[str]:
    """Plain per-actor loop: the same actor draw, then a time cut after the fold-in share."""
    keys = pd.Series(actor_keys(frame), index=frame.index)
    actors = sorted(set(keys))
    chosen = np.random.default_rng(seed).permutation(len(actors))[: round(fraction * len(actors))]
    test: set[str] = set()
    for a in chosen:
        group = frame[keys == actors[a]]
        if len(group) < 2:
            continue
        n_fold = min(max(int(np.floor(fold_in * len(group) + 1e-9)), 1), len(group) - 1)
        cut = sorted(group["ts"])[n_fold]
        if cut == group["ts"].min():
            continue  # all tied with the first event: no earlier history, the actor stays in train
        test.update(group.loc[group["ts"] >= cut, "event_id"])
    return test


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["u1", "u2", "u3", "u4", "u5", None]), st.integers(0, 8)),
        max_size=50,
    ),
    st.floats(0.05, 0.95),
    st.floats(0.05, 0.95),
    st.integers(0, 3),
)
def test_user_holdout_matches_reference_and_is_leak_free(
    rows: list[tuple[str | None, int]], fraction: float, fold_in: float, seed: int
) -> None:
    frame = events(
        [(f"e{i:03d}", user, f"s{i % 2}", t) for i, (user, t) in enumerate(rows)]
    ).sample(frac=1.0, random_state=len(rows))
    split = user_holdout(frame, fraction, seed=seed, fold_in=fold_in)
    assert_partition(split, frame)
    assert ids(split.test) == reference_user_holdout(frame, fraction, seed, fold_in)
    train_keys = pd.Series(actor_keys(split.train), index=split.train.index)
    test_keys = pd.Series(actor_keys(split.test), index=split.test.index)
    n_actors = len(set(actor_keys(frame))) if len(frame) else 0
    assert test_keys.nunique() <= round(fraction * n_actors)  # only held-out actors reach test
    for key, test_ts in split.test["ts"].groupby(test_keys):
        train_ts = split.train["ts"][train_keys == key]
        assert len(train_ts) >= 1  # fold-in history to recommend from
        assert train_ts.max() < test_ts.min()  # strictly later: no leak through ties


def test_user_holdout_folds_in_the_first_share_by_time() -> None:
    # alice: 10 events at t=0..9, fold_in 0.8 -> floor(8.0) = 8 in train, t=8,9 in test.
    # bob: 5 events at t=0,1,2,2,2, fold_in 0.5 -> floor(2.5) = 2 -> cut at ts[2] = 2: train
    # t=0,1 and every event tied at t=2 goes to test.
    alice = [(f"a{t}", "alice", None, t) for t in range(10)]
    bob = [("b0", "bob", None, 0), ("b1", "bob", None, 1)] + [
        (f"b2{c}", "bob", None, 2) for c in "xyz"
    ]
    frame = events(alice + bob)
    split = user_holdout(frame, 0.99, fold_in=0.8)  # round(0.99 * 2) = 2: everyone held out
    assert split.name == "user-holdout:0.99"
    assert {"a8", "a9"} <= ids(split.test) and {f"a{t}" for t in range(8)} <= ids(split.train)
    half = user_holdout(frame, 0.99, fold_in=0.5)
    assert ids(half.test) == {"a5", "a6", "a7", "a8", "a9", "b2x", "b2y", "b2z"}


def test_user_holdout_keeps_other_actors_and_single_events_in_train() -> None:
    frame = many(5_000, 200)
    split = user_holdout(frame, 0.25, seed=5)
    held = set(actor_keys(split.test))
    assert len(held) == 50  # round(0.25 * 200); every user here has many events
    others = frame[~np.isin(actor_keys(frame), list(held))]
    assert set(others.index) <= set(split.train.index)
    # One event; all events at one time; no actor at all: nothing to split, all stay in train.
    rows = [("x", "solo", None, 0), ("t1", "tied", None, 4), ("t2", "tied", None, 4)]
    lone = events([*rows, ("n", None, None, 1)])
    assert ids(user_holdout(lone, 0.99).train) == {"x", "t1", "t2", "n"}


def test_user_holdout_is_reproducible_and_ignores_row_order() -> None:
    frame = many(2_000, 100)
    first = user_holdout(frame, 0.2, seed=11)
    assert same(first, user_holdout(frame, 0.2, seed=11))
    assert same(first, user_holdout(frame.sample(frac=1.0, random_state=2), 0.2, seed=11))
    assert not same(first, user_holdout(frame, 0.2, seed=12))


def test_user_holdout_of_empty_frame_and_bad_arguments() -> None:
    split = user_holdout(events([]))
    assert split.train.empty and split.test.empty
    one = events([("a", "u", None, 0)])
    for kwargs in ({"fraction": 1.0}, {"fraction": 0.0}, {"fold_in": 1.0}, {"fold_in": 0}):
        with pytest.raises(ValidationError) as info:
            user_holdout(one, **kwargs)
        assert info.value.field == "split"


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "spec", ["temporal:0.8", "leave-last-out:1", "random:0.2", "user-holdout:0.3"]
)
def test_validation_split_never_touches_test(spec: str) -> None:
    frame = many(3_000, 80)
    parsed = parse_split(spec)
    outer = parsed.apply(frame)
    inner = validation_split(outer.train, parsed)
    assert inner.name == f"validation:{spec}"
    assert_partition(inner, outer.train)
    assert inner.train.index.union(inner.test.index).intersection(outer.test.index).empty
    assert len(inner.test) > 0 and len(inner.train) > 0
    assert same(inner, validation_split(outer.train, parsed))  # deterministic


def test_validation_split_follows_the_spec_rule() -> None:
    frame = many(3_000, 80)
    temporal = parse_split("temporal:0.8")
    train = temporal.apply(frame).train
    inner = validation_split(train, temporal)
    assert same(inner, temporal_split(train, 0.8))  # the same quantile, of train's times
    assert inner.train["ts"].max() < inner.test["ts"].min() <= train["ts"].max()
    lol = parse_split("leave-last-out:2")
    train = lol.apply(frame).train
    assert same(validation_split(train, lol), leave_last_out(train, 2))
    # Seeded splits draw with a derived seed: not the test split's draw replayed on train.
    rnd = parse_split("random:0.2")
    train = rnd.apply(frame).train
    inner = validation_split(train, rnd)
    assert not same(inner, random_holdout(train, 0.2, seed=0))
    assert abs(len(inner.test) / len(train) - 0.2) < 0.04
