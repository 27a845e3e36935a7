"""Split edges that the mutation run (TESTING.md) found unpinned: the words of every refusal, the
name of a split with nothing to split, a cut between microsecond neighbours, the draw boundary of
``random`` and the seeds that reach ``user-holdout``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsmith.errors import ValidationError
from recsmith.evaluation.split import (
    SplitSpec,
    leave_last_out,
    parse_split,
    random_holdout,
    temporal_split,
    user_holdout,
)
from recsmith.events.schema import EVENT_COLUMNS

T0 = 1_700_000_000_000_000  # a Unix time in microseconds, as the canonical ts column holds
EXPECTED = "expected 'temporal[:QUANTILE]', 'leave-last-out[:N]', 'random[:FRACTION]' or "
EXPECTED += "'user-holdout[:FRACTION]'"


def frame_of(rows: list[tuple[str, str | None, int]]) -> pd.DataFrame:
    """Canonical frame from (event_id, user_id, ts in microseconds after T0) rows."""
    return pd.DataFrame(
        {
            "event_id": [r[0] for r in rows],
            "user_id": pd.Series([r[1] for r in rows], dtype=object),
            "session_id": pd.Series([None] * len(rows), dtype=object),
            "item_id": [f"i{n}" for n in range(len(rows))],
            "event_type": "view",
            "value": np.nan,
            "ts": np.array([T0 + r[2] for r in rows], dtype=np.int64),
            "context": None,
        },
        columns=list(EVENT_COLUMNS),
    )


ONE = frame_of([("a", "u", 0)])


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (123, "expected a string such as 'temporal:0.9', got 123"),
        ("randomly", f"unknown split 'randomly'; {EXPECTED}"),
        ("leave_last_out", f"unknown split 'leave_last_out'; {EXPECTED}"),
        ("random:", "missing value after ':' in 'random:'"),
        ("random:x", "random fraction 'x' is not a number"),
        ("random:1", "fraction must be in (0, 1), got 1.0"),
        ("user-holdout:y", "user-holdout fraction 'y' is not a number"),
        ("user-holdout:-0.2", "fraction must be in (0, 1), got -0.2"),
        ("temporal:abc", "temporal quantile 'abc' is not a number"),
        ("temporal:0.5:1", "temporal quantile '0.5:1' is not a number"),
        ("temporal:1.5", "quantile must be in (0, 1), got 1.5"),
        ("temporal:nan", "quantile must be in (0, 1), got nan"),
        ("leave-last-out:0", "leave-last-out count must be an integer >= 1, got 0"),
        ("leave-last-out:1.5", "leave-last-out count '1.5' is not a positive integer"),
    ],
)
def test_parse_split_refusals_say_what_is_wrong(spec: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_split(spec)
    assert (info.value.field, info.value.reason) == ("split", reason)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: temporal_split(ONE, 1.5), "quantile must be in (0, 1), got 1.5"),
        (lambda: temporal_split(ONE, "0.5"), "quantile must be a number, got '0.5'"),
        (lambda: random_holdout(ONE, 0.0), "fraction must be in (0, 1), got 0.0"),
        (lambda: user_holdout(ONE, fraction=1.0), "fraction must be in (0, 1), got 1.0"),
        (lambda: user_holdout(ONE, fold_in=0), "fold-in share must be in (0, 1), got 0"),
        (lambda: leave_last_out(ONE, 0), "leave-last-out count must be an integer >= 1, got 0"),
    ],
)
def test_direct_calls_refuse_bad_arguments_saying_which(call: object, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()  # type: ignore[operator]
    assert (info.value.field, info.value.reason) == ("split", reason)


def test_a_split_with_nothing_to_split_keeps_its_name() -> None:
    assert temporal_split(frame_of([]), 0.75).name == "temporal:0.75"
    assert leave_last_out(frame_of([]), 3).name == "leave-last-out:3"
    no_actor = frame_of([("a", None, 0)])
    assert leave_last_out(no_actor, 2).name == "leave-last-out:2"


def test_the_temporal_cut_is_an_event_time_even_a_microsecond_apart() -> None:
    # ts T0 and T0 + 1 us, quantile 0.1: the cut is the higher event time, T0 + 1 us, so "a"
    # trains and "b" is tested. An interpolated cut (T0 + 0.1 us) rounds to T0 in float64
    # (spacing 0.25 at 1.7e15) and would send both to test, leaving nothing to train on.
    split = temporal_split(frame_of([("a", "u", 0), ("b", "v", 1)]), 0.1)
    assert list(split.train["event_id"]) == ["a"]
    assert list(split.test["event_id"]) == ["b"]


def test_random_holdout_sends_an_event_to_test_only_below_the_fraction() -> None:
    # Draws go to events in event_id order; with fraction equal to e0's own draw, P(test) =
    # fraction means draw < fraction: e0 stays in train, every smaller draw is tested.
    draws = np.random.default_rng(0).random(4)
    frame = frame_of([(f"e{n}", "u", 10 - n) for n in range(4)])
    split = random_holdout(frame, float(draws[0]), seed=0)
    assert set(split.test["event_id"]) == {f"e{n}" for n in range(4) if draws[n] < draws[0]}
    assert "e0" in set(split.train["event_id"])


def test_user_holdout_seeds_reach_the_draw() -> None:
    frame = frame_of([(f"e{a}{t}", f"u{a}", t) for a in range(8) for t in range(3)])

    def tested(split_: object) -> set[str]:
        return set(split_.test["user_id"])  # type: ignore[attr-defined]

    by_seed = {seed: tested(user_holdout(frame, 0.5, seed=seed)) for seed in (0, 1)}
    assert by_seed[0] != by_seed[1]  # so each comparison below can tell the seeds apart
    assert tested(user_holdout(frame, 0.5)) == by_seed[0]  # the default seed is 0
    spec = SplitSpec("user-holdout", fraction=0.5, seed=1)
    assert tested(spec.apply(frame)) == by_seed[1]
    assert tested(spec.apply(frame, seed=0)) == by_seed[0]
    # a held-out actor keeps floor(0.8 * 3) = 2 events for fold-in; its last one is tested
    assert len(user_holdout(frame, 0.5).test) == 4


def test_user_holdout_with_no_actor_or_one_actor() -> None:
    no_actor = frame_of([("a", None, 0), ("b", None, 1)])
    nothing = user_holdout(no_actor, 0.5)
    assert (nothing.name, set(nothing.train["event_id"]), len(nothing.test)) == (
        "user-holdout:0.5",
        {"a", "b"},
        0,
    )
    assert user_holdout(frame_of([]), 0.3).name == "user-holdout:0.3"
    # one actor, round(0.6 * 1) = 1 held out: floor(0.5 * 4) = 2 events of fold-in, 2 tested
    alone = user_holdout(frame_of([(f"e{t}", "u", t) for t in range(4)]), 0.6, fold_in=0.5)
    assert set(alone.test["event_id"]) == {"e2", "e3"}


def test_user_holdout_keeps_one_event_of_history_even_at_a_fold_in_share_near_one() -> None:
    # floor(0.9999999999 * 2 + 1e-9) = 2 would leave no test event; at most count - 1 = 1 folds in
    frame = frame_of([("a0", "a", 0), ("a1", "a", 5), ("b0", "b", 1), ("b1", "b", 2)])
    split = user_holdout(frame, 0.99, fold_in=0.9999999999)  # round(0.99 * 2) = 2: both held
    assert set(split.test["event_id"]) == {"a1", "b1"}


def test_user_holdout_cuts_exactly_at_any_int64_time() -> None:
    # Times past 2**53 us: as float64, 2**53 + 1 rounds to 2**53, which would send the event at
    # 2**53 (before the cut) to test with it. The cut stays an int64 time.
    big = 2**53 - T0  # frame_of adds T0
    frame = frame_of([("h", "u", big - 2), ("e", "u", big), ("c", "u", big + 1)])
    split = user_holdout(frame, 0.99, fold_in=0.8)  # floor(0.8 * 3) = 2 fold in: cut at "c"
    assert set(split.test["event_id"]) == {"c"}


def test_user_holdout_leaves_actors_not_held_out_in_train_before_1970() -> None:
    # Times around 0 (1970): an actor not drawn stays whole in train whatever its times, here
    # 20 actors with events at -10, 5 and 6 us, of which round(0.1 * 20) = 2 are held out.
    frame = frame_of([(f"e{a}-{t}", f"u{a:02d}", t - T0) for a in range(20) for t in (-10, 5, 6)])
    split = user_holdout(frame, 0.1, seed=4)
    held = set(split.test["user_id"])
    assert len(held) == 2
    assert set(split.train["user_id"]) == {f"u{a:02d}" for a in range(20)}
    assert len(split.test) == 2  # floor(0.8 * 3) = 2 fold in, 1 tested, per held-out actor
