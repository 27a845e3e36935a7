"""A time cut that does not decide bars what falls below popularity there (``robust_choice``):
the dense ml-100k case (BENCHMARKS §69, §83) on per-user scores small enough to count by hand.

Protocol 1 is a time cut of 130 users that does not decide: trending finds 12 held-out items,
popularity 10, EASE the same 10, transitions 7 and the fused order 8 (each of the same users:
nothing there is beyond noise of popularity). Protocol 2 is each user's latest item (750 users)
and decides: transitions 75, EASE 50, popularity 35, trending 30, the fused order 100."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.evaluation.significance import bootstrap_ci
from recsmith.pipeline.config import default_pipeline_config
from recsmith.pipeline.robust_choice import (
    RESAMPLES,
    Tried,
    best_single,
    deciding,
    prefer,
    vetoed,
    worst_share,
)

CONFIG = default_pipeline_config()
CUT, LATEST = 130, 750


def hits(n_users: int, found: int) -> np.ndarray:
    """Per-user NDCG where the first ``found`` users found their item at the top."""
    scores = np.zeros(n_users)
    scores[:found] = 1.0
    return scores


def tried(name: str, on_cut: int, on_latest: int) -> Tried:
    return Tried(name, CONFIG, (hits(CUT, on_cut), hits(LATEST, on_latest)))


POPULARITY = tried("popularity", 10, 35)
EASE = tried("ease", 10, 50)
TRANSITIONS = tried("transitions", 7, 75)
TRENDING = tried("trending", 12, 30)
SINGLES = [POPULARITY, EASE, TRANSITIONS, TRENDING]
FUSED = tried("fused", 8, 100)


def test_below_popularity_on_a_time_cut_that_does_not_decide_is_not_chosen() -> None:
    refs, said = deciding(SINGLES, seed=0, timed=[True, False])
    assert [s["decides"] for s in said] == [False, True]
    # transitions is below popularity on the cut, but not beyond noise: no share counts there
    high = bootstrap_ci(TRANSITIONS.per_user[0] - POPULARITY.per_user[0], n_resamples=RESAMPLES)[1]
    assert high >= 0
    assert worst_share(TRANSITIONS, refs) == pytest.approx(1.0)  # 75 / 75 on protocol 2
    assert refs.bars == (pytest.approx(10 / 130), None)
    assert [vetoed(t, refs) for t in SINGLES] == [False, False, True, False]
    # EASE, level with popularity on the cut, ships: worst share 50 / 75 against
    # popularity's 35 / 75 and trending's 30 / 75
    assert worst_share(EASE, refs) == pytest.approx(50 / 75)
    assert best_single(SINGLES, refs) is EASE
    # the fused order beats EASE beyond noise on the latest item and is worse beyond noise on
    # neither protocol, but falls below popularity on the cut (8 < 10): EASE stays
    choice, reason = prefer(EASE, "best single source", FUSED, refs, seed=0)
    assert choice is EASE
    assert "fused below popularity on a time cut that does not decide" in reason
    assert "0.0615 < popularity's 0.0769 on protocol 1" in reason


def test_without_the_bar_the_same_scores_ship_transitions_then_the_fused_order() -> None:
    """The oracle for the bar's effect: the same scores where protocol 1 is each user's
    latest items (``timed`` False), as every protocol was read before the bar."""
    for timed in ([False, False], []):
        refs, _ = deciding(SINGLES, seed=0, timed=timed)
        assert not any(vetoed(t, refs) for t in [*SINGLES, FUSED])
        assert best_single(SINGLES, refs) is TRANSITIONS
        assert prefer(TRANSITIONS, "best single source", FUSED, refs, seed=0)[0] is FUSED


def test_a_vetoed_choice_does_not_block_one_that_is_vetoed_too() -> None:
    """Where the simpler choice is below the bar as well, the rule is as before: the richer
    one replaces it on its gain beyond noise."""
    refs, _ = deciding(SINGLES, seed=0, timed=[True, False])
    assert vetoed(TRANSITIONS, refs) and vetoed(FUSED, refs)
    assert prefer(TRANSITIONS, "best single source", FUSED, refs, seed=0)[0] is FUSED


def test_popularity_ships_where_every_other_source_is_below_it_on_the_cut() -> None:
    """Popularity is never vetoed (its mean is the bar): where every other source falls below
    it on the cut, popularity serves."""
    below = [POPULARITY, tried("ease", 9, 50), TRANSITIONS]
    refs, _ = deciding(below, seed=0, timed=[True, False])
    assert best_single(below, refs) is POPULARITY
