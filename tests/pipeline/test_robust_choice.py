"""The maximin rule calibration chooses by, on per-user scores small enough to check by hand:
each configuration is read as its share of the best single source on each protocol, judged by
its worst share, and a richer choice replaces a simpler one only if it lifts the simpler one's
weakest protocol beyond paired-bootstrap noise without a lower worst share of its own, or is
better beyond noise on a protocol that counts and worse beyond noise on none."""

from __future__ import annotations

import numpy as np
import pytest

from recsmith.evaluation.significance import bootstrap_ci
from recsmith.pipeline.config import default_pipeline_config
from recsmith.pipeline.robust_choice import (
    RESAMPLES,
    Refs,
    Tried,
    best_means,
    best_single,
    deciding,
    pooled_lead,
    prefer,
    worst_share,
)

CONFIG = default_pipeline_config()


def tried(name: str, *per_protocol: list[float]) -> Tried:
    return Tried(name, CONFIG, tuple(np.array(p, dtype=float) for p in per_protocol))


def test_a_source_that_wins_one_protocol_and_collapses_on_the_other_loses_to_a_steady_one() -> None:
    """Trending-like: 0.8 after a time cut, 0.1 on each user's last item; personal: 0.6 and 0.4;
    the best single source per protocol is (0.8, 0.4), so the worst shares are
    min(0.8/0.8, 0.1/0.4) = 0.25 and min(0.6/0.8, 0.4/0.4) = 0.75."""
    n = 200
    trending = tried("trending", [0.8] * n, [0.1] * n)
    personal = tried("personal", [0.6] * n, [0.4] * n)
    refs = best_means([trending, personal])
    assert refs == pytest.approx((0.8, 0.4))
    assert worst_share(trending, refs) == pytest.approx(0.25)
    assert worst_share(personal, refs) == pytest.approx(0.75)
    choice, reason = prefer(trending, "best after the cut", personal, refs, seed=0)
    assert choice is personal  # lifts trending's weakest protocol (the last item) by +0.3
    assert reason.startswith("beats trending by +0.3000 [+0.3000, +0.3000] on protocol 2")
    # trending lifts personal's weakest protocol (the time cut) by +0.2, but its own worst share
    # is lower: it does not replace it
    kept, reason = prefer(personal, "steady", trending, refs, seed=0)
    assert kept is personal and "trending not better by more than noise (+0.2000" in reason


def test_on_one_protocol_the_rule_is_the_paired_interval_of_the_mean_difference() -> None:
    """With one protocol the rule is the plain one: the richer replaces the simpler iff the
    paired bootstrap interval of the per-user difference (``bootstrap_ci``, same seed) lies above
    zero; checked on a clear gain and on no gain."""
    rng = np.random.default_rng(4)
    a = rng.random(300)
    for shift, expected_low_above_zero in ((0.08, True), (0.0, False)):
        b = a + rng.normal(shift, 0.2, 300)
        rich, simple = tried("rich", list(b)), tried("simple", list(a))
        refs = best_means([rich, simple])
        low, high = bootstrap_ci(b - a, n_resamples=RESAMPLES, seed=3)
        assert (low > 0) is expected_low_above_zero
        choice, reason = prefer(simple, "", rich, refs, seed=3)
        assert choice is (rich if low > 0 else simple)
        assert f"{(b - a).mean():+.4f} [{low:+.4f}, {high:+.4f}] on protocol 1" in reason


def test_a_noisy_protocol_where_both_tie_does_not_veto_a_gain_beyond_noise_on_the_other() -> None:
    """The simpler choice is weakest on the second protocol (600 users), where the richer gains
    0.05 for every user; on the first (20 users) the two differ by ±0.3 per user around zero. The
    richer lifts the weakest protocol beyond noise and its worst share is higher: it replaces."""
    noise = np.tile([0.3, -0.3], 10)
    simple = tried("simple", [0.5] * 20, [0.2] * 600)
    rich = tried("rich", list(0.5 + noise), [0.25] * 600)
    refs = best_means([simple, rich])
    assert worst_share(simple, refs) == pytest.approx(0.8)
    assert worst_share(rich, refs) == pytest.approx(1.0)
    assert low_on_first(rich, simple) < 0 < high_on_first(rich, simple)  # a tie within noise
    assert prefer(simple, "simple", rich, refs, seed=0)[0] is rich


def low_on_first(rich: Tried, simple: Tried) -> float:
    return bootstrap_ci(rich.per_user[0] - simple.per_user[0], n_resamples=RESAMPLES)[0]


def high_on_first(rich: Tried, simple: Tried) -> float:
    return bootstrap_ci(rich.per_user[0] - simple.per_user[0], n_resamples=RESAMPLES)[1]


def test_a_lead_within_noise_keeps_the_simpler_choice() -> None:
    """Twenty users each, the richer choice ahead on average but by one user's luck: the interval
    on the simpler one's weakest protocol straddles zero and the simpler one stays."""
    base = [0.5] * 20
    lucky = [0.5] * 19 + [1.0]
    simple, rich = tried("simple", base, base), tried("rich", lucky, lucky)
    refs = best_means([simple, rich])
    assert worst_share(rich, refs) > worst_share(simple, refs)
    assert low_on_first(rich, simple) <= 0
    assert prefer(simple, "simple", rich, refs, seed=0)[0] is simple


def test_a_protocol_where_every_source_scores_zero_tells_nothing_apart() -> None:
    """Nobody's held-out item was found by any source on the second protocol: its share is 1 for
    all, and the first protocol decides."""
    a, b = tried("a", [0.2] * 50, [0.0] * 50), tried("b", [0.4] * 50, [0.0] * 50)
    refs = best_means([a, b])
    assert refs == (pytest.approx(0.4), 0.0)
    assert worst_share(a, refs) == pytest.approx(0.5) and worst_share(b, refs) == pytest.approx(1)
    assert prefer(a, "", b, refs, seed=0)[0] is b


def hits(n_users: int, *users: range) -> list[float]:
    """Per-user NDCG where the listed users found their item at the top (1) and no one else."""
    scores = np.zeros(n_users)
    for found in users:
        scores[found] = 1.0
    return list(scores)


def test_a_protocol_of_pure_noise_does_not_count_and_the_clear_one_decides() -> None:
    """Protocol 1 is noise: 137 users whose held-out items are random, found by luck — 6 by
    popularity, 2 by the personal source, 5 by the other (disjoint users: no source is better
    there beyond the interval of its paired difference). Protocol 2 (800 users) has a clear
    winner: the personal source finds 240 items, popularity 160 of the same users' items, the
    other 120. Read as signal, protocol 1 gives the personal source the worst share 2/6 = 0.33,
    below popularity's 160/240 = 0.67, and the maximin ships popularity (the ml-100k@0.1 case,
    BENCHMARKS §42); protocol 1 does not decide, so protocol 2 alone chooses the personal one."""
    popularity = tried("popularity", hits(137, range(0, 6)), hits(800, range(0, 160)))
    personal = tried("personal", hits(137, range(6, 8)), hits(800, range(0, 240)))
    other = tried("other", hits(137, range(8, 13)), hits(800, range(0, 120)))
    singles = [popularity, personal, other]
    refs, said = deciding(singles, seed=0)
    assert max(singles, key=lambda t: worst_share(t, refs)) is personal
    assert [s["decides"] for s in said] == [False, True]
    assert said[0]["evidence"].startswith("popularity − other +0.0073 [")
    assert said[1]["evidence"].startswith("personal − popularity +0.1000 [+0.0")
    assert refs.means == (0.0, pytest.approx(0.3))
    # what the rule ignores would have chosen popularity: the noise is what it guards against
    everything = best_means(singles)
    assert max(singles, key=lambda t: worst_share(t, everything)) is popularity
    # a richer choice is judged on the deciding protocol: it beats the personal source there
    # beyond noise, and the noisy one, where its luck (4) is within noise of popularity's (6),
    # has no say — unless it falls below popularity there beyond noise (it finds nothing)
    rich = tried("fused", hits(137, range(20, 24)), hits(800, range(0, 300)))
    assert prefer(personal, "best single source", rich, refs, seed=0)[0] is rich
    assert worst_share(rich, refs) == pytest.approx(1.25)
    blind = tried("fused", hits(137), hits(800, range(0, 300)))
    assert worst_share(blind, refs) == 0.0
    assert prefer(personal, "best single source", blind, refs, seed=0)[0] is personal


def test_where_no_protocol_tells_the_sources_apart_every_one_counts() -> None:
    """Two protocols of luck alone: neither decides, so each one's best is its reference, as
    before any protocol was set aside (on one protocol: the plain best mean)."""
    a = tried("popularity", hits(100, range(0, 3)), hits(200, range(0, 4)))
    b = tried("b", hits(100, range(3, 5)), hits(200, range(4, 9)))
    refs, said = deciding([a, b], seed=0)
    assert not any(s["decides"] for s in said)
    assert refs == Refs(best_means([a, b]))


def decided(*singles: Tried) -> tuple[list[Tried], Refs, list[bool]]:
    """``singles`` (popularity first), the references ``deciding`` gives them and whether each
    protocol decides."""
    refs, said = deciding(singles, seed=0)
    return list(singles), refs, [s["decides"] for s in said]


def collapse_case() -> tuple[Tried, Tried, Tried]:
    """§42's collapse case as hit lists (popularity, personal, trending): protocol 1 (400 users)
    does not decide, protocol 2 (800) does; trending collapses below popularity on protocol 1."""
    return (
        tried("popularity", hits(400, range(0, 100)), hits(800, range(0, 100))),
        tried("personal", hits(400, range(50, 160)), hits(800, range(0, 250))),
        tried("trending", hits(400, range(0, 20)), hits(800, range(0, 300))),
    )


def test_a_protocol_that_does_not_decide_still_bars_a_collapse_below_popularity() -> None:
    """Protocol 1 (400 users) does not decide: the personal source's lead over popularity (110
    vs 100 hits, largely different users) is within noise; but trending finds 20, below
    popularity beyond noise. Protocol 2 (800) decides: trending 300, personal 250, popularity
    100. Trending's worst share is its share of popularity on protocol 1 (0.05 / 0.25 = 0.2),
    the personal source's is 250 / 300 on protocol 2 (protocol 1 has no say on it): it ships,
    and no protocol has it below popularity."""
    singles, refs, decides = decided(*collapse_case())
    _, personal, trending = singles
    assert decides == [False, True]
    assert worst_share(trending, refs) == pytest.approx(0.2)
    assert worst_share(personal, refs) == pytest.approx(250 / 300)
    assert max(singles, key=lambda t: worst_share(t, refs)) is personal


def test_where_popularity_wins_beyond_noise_the_protocol_decides() -> None:
    """Popularity first by 100 of 400 users over the runner-up: that protocol tells popularity
    apart from the personal sources and counts."""
    popularity = tried("popularity", hits(400, range(0, 200)))
    personal = tried("personal", hits(400, range(0, 100)))
    refs, said = deciding([popularity, personal], seed=0)
    assert said[0]["decides"] and said[0]["evidence"].startswith("popularity − personal +0.2500")
    assert refs.means == (pytest.approx(0.5),)


def test_a_gain_beyond_noise_on_one_protocol_ships_where_the_weakest_ties_within_noise() -> None:
    """The ml-100k long-sequence case (BENCHMARKS §59): protocol 1 (200 users, pooled time cuts)
    is led by trending (100 hits) and EASE finds 20: EASE's weakest share, 0.1 / 0.5 = 0.2. The
    fusion finds 19 of the same 20 there (one user lower: the interval's upper end is 0, not
    below it) and 150 of 600 latest items on protocol 2 against EASE's 100 (+0.083, interval
    [+0.060, +0.103]). Its worst share, 0.095 / 0.5 = 0.19, is below EASE's and it does not lift
    protocol 1: the weakest-protocol rule keeps EASE. Better beyond noise on protocol 2 and worse
    beyond noise on none, the fusion replaces it."""
    trending = tried("trending", hits(200, range(0, 100)), hits(600, range(0, 30)))
    ease = tried("ease", hits(200, range(0, 20)), hits(600, range(0, 100)))
    fused = tried("fused", hits(200, range(0, 19)), hits(600, range(0, 150)))
    refs = best_means([trending, ease])
    assert worst_share(ease, refs) == pytest.approx(0.2)
    assert worst_share(fused, refs) == pytest.approx(0.19)
    low, high = bootstrap_ci(fused.per_user[0] - ease.per_user[0], n_resamples=RESAMPLES, seed=0)
    assert low < 0 and high == 0.0
    choice, reason = prefer(ease, "best single source", fused, refs, seed=0)
    assert choice is fused
    assert "worse on none" in reason and "+0.0833 [+0.0600, +0.1033] on protocol 2" in reason


def test_a_gain_on_one_protocol_with_a_loss_beyond_noise_on_another_keeps_the_simpler() -> None:
    """The simulated marketplace case (BENCHMARKS §59): iALS pulls the fusion down. It finds 150
    of 600 latest items against EASE's 120 (beyond noise), but 60 of 600 after the time cut
    against EASE's 120 (below beyond noise): EASE stays."""
    ease = tried("ease", hits(600, range(0, 120)), hits(600, range(0, 120)))
    fused = tried("fused", hits(600, range(0, 60)), hits(600, range(0, 150)))
    refs = best_means([ease])
    assert prefer(ease, "best single source", fused, refs, seed=0)[0] is ease


def test_a_gain_only_on_a_protocol_that_does_not_decide_keeps_the_simpler() -> None:
    """Protocol 1 (400 users) does not decide (personal 110 hits, popularity 100, largely other
    users); protocol 2 (800) does (personal 250, popularity 100). The richer choice gains 60
    hits beyond noise on protocol 1 — which has no say — and ties on protocol 2: no gain where
    it counts, the personal source stays."""
    popularity, personal, _ = collapse_case()
    _, refs, decides = decided(popularity, personal)
    assert decides == [False, True]
    rich = tried("rich", hits(400, range(50, 220)), hits(800, range(0, 250)))
    low = bootstrap_ci(rich.per_user[0] - personal.per_user[0], n_resamples=RESAMPLES, seed=0)[0]
    assert low > 0
    assert prefer(personal, "best single source", rich, refs, seed=0)[0] is personal


def market_case() -> tuple[Tried, Tried, Tried]:
    """The time-split marketplace case (market / ml-100k / 3, BENCHMARKS §94), as hit lists.
    Protocol 1 (100 users, pooled time cuts) decides: trending finds users 0–59, popularity
    0–29 (+0.30 beyond noise). EASE finds 15–54 there: 15 fewer and 25 more than popularity,
    +0.10 within noise. Protocol 2 (600 users, each user's latest item) does not decide:
    popularity, first there, finds 0–59; EASE 5–59 and 100–102 (−0.0033, within noise);
    trending only 0–35, below popularity beyond noise (−0.04). Worst shares by hand: popularity
    30/60 = 0.5 (protocol 1; protocol 2 measures against it), trending 36/60 = 0.6 (its share
    of popularity on protocol 2), EASE 40/60 = 0.667 (protocol 1; within noise of popularity
    on protocol 2, so no share there)."""
    popularity = tried("popularity", hits(100, range(0, 30)), hits(600, range(0, 60)))
    ease = tried("ease", hits(100, range(15, 55)), hits(600, range(5, 60), range(100, 103)))
    trending = tried("trending", hits(100, range(0, 60)), hits(600, range(0, 36)))
    return popularity, ease, trending


def test_a_source_ahead_of_popularity_on_no_protocol_is_not_the_base_however_its_share_reads() -> (
    None
):
    """EASE has the highest worst share but is ahead of popularity beyond noise on neither
    protocol; trending is, on the protocol that decides, and its worst share (0.6) is not below
    popularity's (0.5): trending is the best single source, not EASE (which the maximin alone
    picks)."""
    popularity, ease, trending = market_case()
    singles = [popularity, ease, trending]
    refs, said = deciding(singles, seed=0)
    assert [s["decides"] for s in said] == [True, False]
    assert refs.some_decide
    shares = [worst_share(t, refs) for t in singles]
    assert shares == [pytest.approx(0.5), pytest.approx(40 / 60), pytest.approx(0.6)]
    low, high = bootstrap_ci(ease.per_user[0] - popularity.per_user[0], n_resamples=RESAMPLES)
    assert low < 0 < high  # EASE's lead on protocol 1: within noise
    assert max(singles, key=lambda t: worst_share(t, refs)) is ease  # the maximin alone
    assert best_single(singles, refs, seed=0) is trending
    # without trending no protocol decides, and EASE, ahead of popularity within noise on
    # the users pooled (+0.10 of 100 cut users, −0.0033 of 600 latest items), is not the base
    alone, _ = deciding([popularity, ease], seed=0)
    assert not alone.some_decide and best_single([popularity, ease], alone, seed=0) is popularity


def test_the_source_ahead_of_popularity_with_the_highest_worst_share_is_the_base() -> None:
    """Where several sources are ahead of popularity beyond noise, the highest worst share among
    them wins, as before: §42's noisy-protocol case and the collapse case keep their choice."""
    singles, refs, _ = decided(*collapse_case())
    assert best_single(singles, refs, seed=0) is singles[1]  # 250/300 against trending's 0.2


def test_where_no_protocol_decides_a_lead_within_noise_leaves_popularity_the_base() -> None:
    """No protocol decides (one user more of 100, one more of 200): b's worst share is the
    higher (1.0 against 0.75), but pooled over both protocols' users b's lead over popularity
    is two users' hits of 300 entries — within noise — and popularity, the simpler choice, is
    the base (BENCHMARKS §104; before, the highest worst share of noise was)."""
    a = tried("popularity", hits(100, range(0, 3)), hits(200, range(0, 4)))
    b = tried("b", hits(100, range(3, 7)), hits(200, range(4, 9)))
    refs, said = deciding([a, b], seed=0)
    assert not refs.some_decide and not any(s["decides"] for s in said)
    assert worst_share(b, refs) == 1.0 and worst_share(a, refs) == pytest.approx(0.75)
    assert best_single([a, b], refs, seed=0) is a


def sparse_case() -> tuple[Tried, Tried]:
    """sparse / ml-100k / 9's shape (BENCHMARKS §104) as hit lists: protocol 1 (64 users after
    the time cuts) — popularity finds users 0–2, transitions 0–3: one user more, within noise (a
    resample misses that user with probability (63/64)^64 ≈ 0.37); protocol 2 (554 latest items)
    — popularity finds 0–75, transitions 20–75 and 200–209 (66): popularity ahead by 20 users
    against 10, within noise."""
    return (
        tried("popularity", hits(64, range(0, 3)), hits(554, range(0, 76))),
        tried("transitions", hits(64, range(0, 4)), hits(554, range(20, 76), range(200, 210))),
    )


def test_where_no_protocol_decides_a_lucky_lead_on_few_users_does_not_beat_popularity() -> None:
    """``sparse_case``: nothing decides; every protocol counts against its best mean, so the
    worst shares by hand are popularity 3/4 = 0.75 (protocol 1) and transitions 66/76 = 0.868
    (protocol 2): the maximin picks transitions on one user of 64 (on test it scored 0.24×
    popularity). Pooled, in units of each protocol's best mean (4/64 and 76/554), transitions
    − popularity sums to +1/(4/64) − 20/(76/554) + 10/(76/554) = 16 − 72.9 = −56.9 over 618
    entries: below zero, so not ahead beyond noise, and popularity is the base."""
    popularity, transitions = sparse_case()
    refs, said = deciding([popularity, transitions], seed=0)
    assert not any(s["decides"] for s in said)
    assert worst_share(popularity, refs) == pytest.approx(0.75)
    assert worst_share(transitions, refs) == pytest.approx(66 / 76)
    lead = pooled_lead(transitions, popularity, refs)
    assert len(lead) == 618
    assert lead.sum() == pytest.approx(16 - 10 * 554 / 76)
    assert best_single([popularity, transitions], refs, seed=0) is popularity


def lead_case() -> tuple[Tried, Tried]:
    """Two protocols of 300 users: on each, popularity finds users 0–59 and x finds 41–117 (it
    gains 58 users and loses 41: +17 of 300). On one protocol that lead is about 17/√99 ≈ 1.71
    standard errors (a ±1 difference on 99 users): within noise, so neither decides."""
    return (
        tried("popularity", hits(300, range(0, 60)), hits(300, range(0, 60))),
        tried("x", hits(300, range(41, 118)), hits(300, range(41, 118))),
    )


def ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}{u}" for u in range(n)])


def test_where_no_protocol_decides_a_lead_beyond_noise_on_distinct_users_pooled_ships() -> None:
    """``lead_case`` on two protocols that hold different people: pooled, the 600 users hold the
    lead twice over, ≈ 1.71 · √2 ≈ 2.42 standard errors, beyond noise; in units of x's mean
    (77/300) the lead is 17/77 a user. The evidence as a whole tells x apart, and x, the highest
    worst share (1.0 against 60/77), is the base."""
    popularity, x = lead_case()
    refs, said = deciding([popularity, x], seed=0)
    assert not any(s["decides"] for s in said)
    users = (ids("a", 300), ids("b", 300))
    lead = pooled_lead(x, popularity, refs, users)
    assert len(lead) == 600 and lead.mean() == pytest.approx(17 / 77)
    assert bootstrap_ci(lead, n_resamples=RESAMPLES, seed=0)[0] > 0
    assert best_single([popularity, x], refs, seed=0, users=users) is x


def test_the_same_users_on_two_protocols_are_one_unit_each_and_their_lead_stays_noise() -> None:
    """``lead_case`` where both protocols hold the same 300 people (every time-cut user is also a
    latest-item user: sparse / ml-100k / 9, 64 of 64): each user is one row, the sum of their
    two scaled differences — by hand 2 · (x − popularity) / (77/300) — so the pooled sample is
    one protocol's lead doubled, still ≈ 1.71 standard errors: within noise, and popularity,
    the simplest choice, is the base. Counted as 600 entries it read as beyond noise."""
    popularity, x = lead_case()
    refs, _ = deciding([popularity, x], seed=0)
    same = ids("u", 300)
    lead = pooled_lead(x, popularity, refs, (same, same))
    by_hand = np.zeros(300)
    by_hand[60:118], by_hand[0:41] = 2 * 300 / 77, -2 * 300 / 77  # gains 58, losses 41
    np.testing.assert_allclose(lead, by_hand[np.argsort(same)])  # rows come out by id
    assert bootstrap_ci(lead, n_resamples=RESAMPLES, seed=0)[0] < 0
    assert best_single([popularity, x], refs, seed=0, users=(same, same)) is popularity


def test_a_user_on_some_protocols_only_is_one_row_holding_what_they_have() -> None:
    """Protocol 1 holds users u3 and u1 (x − popularity: +1, 0; reference 0.5), protocol 2 holds
    u1, u2, u3 (−1, +1, +1; reference 2/3): per user by hand u1 = 0/0.5 − 1/(2/3) = −1.5,
    u2 = +1.5, u3 = 1/0.5 + 1.5 = 3.5, rows by id. An id list that does not match its scores
    is refused, naming the protocol."""
    popularity = tried("popularity", [0.0, 1.0], [1.0, 0.0, 0.0])
    x = tried("x", [1.0, 1.0], [0.0, 1.0, 1.0])
    refs = Refs((0.5, 2 / 3))
    users = (np.array(["u3", "u1"]), np.array(["u1", "u2", "u3"]))
    lead = pooled_lead(x, popularity, refs, users)
    np.testing.assert_allclose(lead, [-1.5, 1.5, 3.5])
    with pytest.raises(ValueError, match=r"users\[1\] holds 2 ids for 3 scores"):
        pooled_lead(x, popularity, refs, (users[0], users[1][:2]))


def test_a_source_ahead_of_popularity_on_every_protocol_within_noise_stays_the_base() -> None:
    """A dense-like time-split case, shaped after dense / ml-100k / 6 (BENCHMARKS §94) but not
    that sample: there the latest item decides too (transitions ahead of popularity beyond
    noise); here only protocol 1 does, so trending's collapse on protocol 2 is weighed as a
    share of popularity. Protocol 1 (150 users after the cut) decides: trending finds 0–89,
    popularity 0–39, EASE 30–74. Protocol 2 (800 latest items) does not: EASE finds 48–111,
    popularity 0–59, trending 0–35 (below popularity beyond noise). EASE is ahead of popularity
    on both protocols but beyond noise on neither. Worst shares by hand: popularity 40/90 =
    0.444, EASE 45/90 = 0.5 (no share on protocol 2: not below popularity), trending 36/60 = 0.6
    (its share of popularity there). EASE, ahead everywhere, competes: trending has the highest
    worst share and is the base; with a trending that collapses further (20/60), EASE is, not
    popularity."""
    singles, refs, decides = decided(
        tried("popularity", hits(150, range(0, 40)), hits(800, range(0, 60))),
        tried("ease", hits(150, range(30, 75)), hits(800, range(48, 112))),
        tried("trending", hits(150, range(0, 90)), hits(800, range(0, 36))),
    )
    popularity, ease, trending = singles
    assert decides == [True, False]
    for n in (0, 1):  # EASE's lead: within noise on each protocol
        low = bootstrap_ci(ease.per_user[n] - popularity.per_user[n], n_resamples=RESAMPLES)[0]
        assert low < 0
    assert [worst_share(t, refs) for t in singles] == [
        pytest.approx(40 / 90),
        pytest.approx(45 / 90),
        pytest.approx(36 / 60),
    ]
    assert best_single(singles, refs, seed=0) is trending
    # without trending's lead, EASE (ahead everywhere) is the base, not popularity
    weaker = tried("trending", hits(150, range(0, 90)), hits(800, range(0, 20)))
    refs, _ = deciding([popularity, ease, weaker], seed=0)
    assert worst_share(weaker, refs) == pytest.approx(20 / 60)
    assert best_single([popularity, ease, weaker], refs, seed=0) is ease


def test_a_source_tied_with_popularity_on_one_protocol_is_not_ahead_everywhere() -> None:
    """The market case with a fourth source: 60 latest items found, as many as popularity (other
    users: a tie, no share there), and EASE's 40 cut users (+0.10 within noise). Its worst share
    (40/60 = 0.667) beats trending's 0.6, but a tie is not "above on every protocol" and it beats
    popularity beyond noise nowhere: trending stays the base."""
    popularity, ease, trending = market_case()
    tied = tried("tied", hits(100, range(15, 55)), hits(600, range(5, 65)))
    assert tied.means[1] == popularity.means[1]
    singles, refs, decides = decided(popularity, tied, ease, trending)
    assert decides == [True, False]
    assert worst_share(tied, refs) == pytest.approx(40 / 60)
    assert worst_share(trending, refs) == pytest.approx(0.6)
    assert best_single(singles, refs, seed=0) is trending


def test_where_a_protocol_decides_and_no_source_is_ahead_popularity_is_the_base() -> None:
    """Popularity first beyond noise on the only protocol (200 of 400 users against 100 and
    150): it decides, nothing is ahead of popularity, and popularity alone is the base."""
    singles, refs, decides = decided(
        tried("popularity", hits(400, range(0, 200))),
        tried("personal", hits(400, range(0, 100))),
        tried("trending", hits(400, range(50, 200))),
    )
    assert decides == [True]
    assert best_single(singles, refs, seed=0) is singles[0]


def test_a_source_as_good_as_popularity_on_every_protocol_leaves_popularity_the_base() -> None:
    """No protocol decides and a source finds as many items as popularity on each (other users):
    the worst shares tie (1.0 each) and the first, popularity, is the base."""
    singles, refs, decides = decided(
        tried("popularity", hits(100, range(0, 3)), hits(200, range(0, 4))),
        tried("b", hits(100, range(3, 6)), hits(200, range(4, 8))),
    )
    assert decides == [False, False]
    assert worst_share(singles[0], refs) == worst_share(singles[1], refs) == 1.0
    assert best_single(singles, refs, seed=0) is singles[0]
