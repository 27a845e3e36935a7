"""Splits: leak-freedom, leave-last-out selection and tie-breaking, actor keys, spec parsing.

Random, user-holdout and validation splits are tested in ``test_split_holdout.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsmith.errors import ValidationError
from recsmith.evaluation.split import (
    Split,
    SplitSpec,
    actor_keys,
    leave_last_out,
    parse_split,
    random_holdout,
    temporal_split,
    user_holdout,
)
from recsmith.events.schema import EVENT_COLUMNS
from recsmith.features.interactions import actor_keys as features_actor_keys

T0 = 1_700_000_000_000_000  # a Unix time in microseconds, as the canonical ts column holds


def events(rows: list[tuple[str, str | None, str | None, int]]) -> pd.DataFrame:
    """Canonical frame from (event_id, user_id, session_id, ts offset in seconds) rows."""
    frame = pd.DataFrame(
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
    return frame


def ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["event_id"])


def assert_partition(split: Split, frame: pd.DataFrame) -> None:
    """Train and test are disjoint, cover every event, and keep columns and index labels."""
    assert list(split.train.columns) == list(frame.columns) == list(split.test.columns)
    both = split.train.index.union(split.test.index)
    assert split.train.index.intersection(split.test.index).empty
    assert both.sort_values().equals(frame.index.sort_values())


# ---------------------------------------------------------------- temporal


def test_temporal_cut_sends_everything_at_or_after_it_to_test() -> None:
    # ts offsets 0..9 s, quantile 0.9 -> cut at 9 s: train 0..8, test {9}.
    frame = events([(f"e{t}", "u", None, t) for t in range(10)])
    split = temporal_split(frame, 0.9)
    assert split.name == "temporal:0.9"
    assert ids(split.test) == {"e9"}
    assert len(split.train) == 9
    assert_partition(split, frame)


def test_temporal_ties_at_the_cut_all_go_to_test() -> None:
    # ts [1, 2, 3, 3, 3], quantile 0.5 -> cut = 3 s (the 3rd smallest): every ts=3 event is test.
    frame = events([("a", "u", None, 1), ("b", "u", None, 2)] + [(c, "v", None, 3) for c in "cde"])
    split = temporal_split(frame, 0.5)
    assert ids(split.train) == {"a", "b"}
    assert ids(split.test) == {"c", "d", "e"}


def test_temporal_of_empty_frame() -> None:
    split = temporal_split(events([]))
    assert split.train.empty and split.test.empty
    assert list(split.train.columns) == list(EVENT_COLUMNS)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=60),
    st.floats(0.01, 0.99),
)
def test_temporal_is_leak_free(offsets: list[int], quantile: float) -> None:
    frame = events([(f"e{n}", f"u{n % 3}", None, t) for n, t in enumerate(offsets)])
    frame = frame.set_index(pd.Index(np.arange(len(frame)) * 7 + 3))  # a non-default index
    split = temporal_split(frame, quantile)
    assert_partition(split, frame)
    assert len(split.test) >= 1
    cut = split.test["ts"].min()
    assert (split.train["ts"] < cut).all()  # no train event at or after the cut
    assert (split.test["ts"] >= cut).all()  # no test event before it
    assert cut in set(frame["ts"])


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_temporal_refuses_quantile_outside_open_interval(quantile: float) -> None:
    with pytest.raises(ValidationError) as info:
        temporal_split(events([("a", "u", None, 0)]), quantile)
    assert info.value.field == "split"


# ---------------------------------------------------------------- leave-last-out


def test_leave_last_out_takes_each_users_last_events() -> None:
    frame = events(
        [
            ("a3", "alice", None, 30),
            ("a1", "alice", None, 10),
            ("b1", "bob", None, 5),
            ("a2", "alice", None, 20),
            ("b2", "bob", None, 6),
            ("c1", "carol", None, 1),  # a single event: stays in train
        ]
    )
    split = leave_last_out(frame)
    assert split.name == "leave-last-out:1"
    assert ids(split.test) == {"a3", "b2"}
    assert ids(split.train) == {"a1", "a2", "b1", "c1"}
    assert_partition(split, frame)
    two = leave_last_out(frame, n=2)
    # alice has 3 events > 2: her last two go; bob has exactly 2 (= n): he stays in train.
    assert ids(two.test) == {"a2", "a3"}
    assert {"b1", "b2", "c1"} <= ids(two.train)


def test_leave_last_out_breaks_time_ties_by_event_id_whatever_the_row_order() -> None:
    rows = [("e1", "u", None, 0), ("x2", "u", None, 50), ("x1", "u", None, 50)]
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        split = leave_last_out(events([rows[i] for i in order]))
        assert ids(split.test) == {"x2"}  # (50, "x2") sorts after (50, "x1")


def test_anonymous_sessions_are_actors() -> None:
    frame = events(
        [
            ("s1", None, "sess", 1),
            ("s2", None, "sess", 2),  # validation turns an empty user id into None
            ("s3", None, "sess", 3),
            ("u1", "sess", "sess", 4),  # a user named like the session is another actor
        ]
    )
    assert actor_keys(frame).tolist() == ["session:sess"] * 3 + ["sess"]
    split = leave_last_out(frame)
    assert ids(split.test) == {"s3"}
    assert ids(split.train) == {"s1", "s2", "u1"}


def test_actor_keys_agree_with_the_interaction_matrix() -> None:
    # The split must group events exactly as the matrix the model trains on does: one function.
    assert actor_keys is features_actor_keys
    frame = events([("a", "u1", "s9", 0), ("b", None, "s1", 1), ("c", "s1", None, 2)])
    assert list(actor_keys(frame)) == ["u1", "session:s1", "s1"]


def test_actor_keys_with_string_dtype_and_missing_actor() -> None:
    frame = events([("a", "u1", None, 0), ("b", None, "s1", 1), ("c", None, None, 2)])
    typed = frame.astype({"user_id": "string", "session_id": "string"})
    assert list(actor_keys(typed))[:2] == ["u1", "session:s1"]
    for f in (frame, typed):  # string-typed ids split exactly like object ones
        assert ids(leave_last_out(f).train) == {"a", "b", "c"}
    # An event with no actor at all cannot be held out for anyone: it stays in train.
    frame = events([("c1", None, None, 0), ("c2", None, None, 1)])
    assert ids(leave_last_out(frame).train) == {"c1", "c2"}


def test_leave_last_out_of_empty_frame() -> None:
    split = leave_last_out(events([]), n=3)
    assert split.train.empty and split.test.empty


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_leave_last_out_refuses_bad_counts(n: int) -> None:
    with pytest.raises(ValidationError) as info:
        leave_last_out(events([("a", "u", None, 0)]), n)
    assert info.value.field == "split"


def slow_leave_last_out(frame: pd.DataFrame, n: int) -> set[str]:
    """Reference: a plain per-user loop over sorted events."""
    held: set[str] = set()
    for _, group in frame.assign(actor=actor_keys(frame)).groupby("actor"):
        if len(group) > n:
            ordered = sorted(zip(group["ts"], group["event_id"], strict=True))
            held.update(event_id for _, event_id in ordered[-n:])
    return held


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["u1", "u2", "u3", None]), st.integers(0, 5)),
        max_size=40,
    ),
    st.integers(1, 4),
)
def test_leave_last_out_matches_reference(rows: list[tuple[str | None, int]], n: int) -> None:
    # Anonymous rows get one of two sessions; few distinct ts values make ties common.
    frame = events(
        [(f"e{i:03d}", user, f"s{i % 2}", t) for i, (user, t) in enumerate(rows)]
    ).sample(frac=1.0, random_state=len(rows))
    split = leave_last_out(frame, n)
    assert_partition(split, frame)
    assert ids(split.test) == slow_leave_last_out(frame, n)
    # Per actor, nothing in train comes after anything in test.
    for key, test_group in split.test.groupby(actor_keys(split.test)):
        train_group = split.train[actor_keys(split.train) == key]
        last_train = max(zip(train_group["ts"], train_group["event_id"], strict=True))
        first_test = min(zip(test_group["ts"], test_group["event_id"], strict=True))
        assert last_train < first_test
        assert len(test_group) == n


# ---------------------------------------------------------------- spec parsing


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("temporal:0.9", SplitSpec("temporal", quantile=0.9)),
        ("temporal", SplitSpec("temporal", quantile=0.9)),
        ("temporal:0.75", SplitSpec("temporal", quantile=0.75)),
        (" Temporal:0.5 ", SplitSpec("temporal", quantile=0.5)),
        ("leave-last-out", SplitSpec("leave-last-out", n=1)),
        ("leave-last-out:2", SplitSpec("leave-last-out", n=2)),
        ("random", SplitSpec("random", fraction=0.2)),
        ("random:0.1", SplitSpec("random", fraction=0.1)),
        ("user-holdout", SplitSpec("user-holdout", fraction=0.2)),
        (" User-Holdout:0.3 ", SplitSpec("user-holdout", fraction=0.3)),
    ],
)
def test_parse_split(spec: str, expected: SplitSpec) -> None:
    assert parse_split(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "randomly",
        "random:",
        "random:0",
        "random:1",
        "random:x",
        "user-holdout:1.5",
        "user-holdout:-0.2",
        "user-holdout:nan",
        "user_holdout",
        "temporal:",
        "temporal:abc",
        "temporal:0",
        "temporal:1",
        "temporal:1.5",
        "temporal:nan",
        "temporal:inf",
        "temporal:0.5:1",
        "leave-last-out:0",
        "leave-last-out:-1",
        "leave-last-out:1.5",
        "leave-last-out:x",
        "leave-last-out:²",
        "leave_last_out",
    ],
)
def test_parse_split_errors_name_the_split_field(spec: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_split(spec)
    assert info.value.field == "split"
    assert str(info.value).startswith("split: ")
    assert isinstance(info.value, ValueError)  # CLI and HTTP map ValueErrors to bad input


def test_spec_apply_and_name_match_the_direct_calls() -> None:
    frame = events([(f"e{t}", f"u{t % 2}", None, t) for t in range(6)])
    for spec, direct in [
        ("temporal:0.5", temporal_split(frame, 0.5)),
        ("leave-last-out:2", leave_last_out(frame, 2)),
        ("random:0.5", random_holdout(frame, 0.5)),
        ("user-holdout:0.5", user_holdout(frame, 0.5)),
    ]:
        parsed = parse_split(spec)
        applied = parsed.apply(frame)
        assert parsed.name == applied.name == direct.name == spec
        assert applied.test.equals(direct.test) and applied.train.equals(direct.train)
