"""``prefer``'s pooled clause (3): a richer choice replaces a simpler one where its lead on the
users of every counting protocol pooled (a user on several protocols one unit) is beyond noise
and it is worse beyond noise on none, though no protocol alone shows the lead. Oracles: an
independent percentile bootstrap (numpy's own generator, not ``bootstrap_ci``) and normal
standard errors worked out by hand on hit-or-miss users."""

from __future__ import annotations

import numpy as np

from recsmith.pipeline.config import default_pipeline_config
from recsmith.pipeline.robust_choice import Refs, Tried, prefer

CONFIG = default_pipeline_config()


def tried(name: str, *per_protocol: np.ndarray) -> Tried:
    return Tried(name, CONFIG, tuple(np.asarray(p, dtype=float) for p in per_protocol))


def hits(n_users: int, found: range) -> np.ndarray:
    """Per-user NDCG where the users in ``found`` had their item at the top and no one else."""
    scores = np.zeros(n_users)
    scores[found] = 1.0
    return scores


def ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}{u}" for u in range(n)])


def oracle_interval(x: np.ndarray, resamples: int = 4000) -> tuple[float, float]:
    """A 95 % percentile bootstrap of the mean written here, apart from the code under test."""
    rng = np.random.default_rng(12345)
    means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def near_case() -> tuple[Tried, Tried, Refs]:
    """Two protocols of 300 users each: on both, the simpler choice finds users 0–59 and the
    richer 41–117 (58 gained, 41 lost: +17 of 300). Alone, a protocol's lead is 17 / √99 ≈ 1.71
    standard errors (±1 on 99 users): within noise. Each protocol's reference is the richer
    one's mean (77/300), so a user's scaled difference is ±300/77."""
    simple = tried("itemknn_recent", hits(300, range(0, 60)), hits(300, range(0, 60)))
    rich = tried("fused", hits(300, range(41, 118)), hits(300, range(41, 118)))
    return simple, rich, Refs((77 / 300, 77 / 300))


def test_a_lead_beyond_noise_only_on_distinct_users_pooled_replaces_the_simpler_choice() -> None:
    """``near_case`` on two protocols holding different people: pooled, 600 units hold the lead
    twice over, 17 · 2 / √198 ≈ 2.42 standard errors: beyond noise, and the fused order ships
    — by clause (3) only, for each protocol's own interval holds 0 (the oracle's intervals say
    so too). Without user ids there is no clause (3) and the simpler choice stays."""
    simple, rich, refs = near_case()
    for p in range(2):
        low, high = oracle_interval(rich.per_user[p] - simple.per_user[p])
        assert low < 0 < high
    by_hand = np.concatenate([rich.per_user[p] - simple.per_user[p] for p in range(2)]) / (77 / 300)
    assert by_hand.mean() / (by_hand.std() / np.sqrt(600)) > 1.96  # ≈ 2.42 by hand
    assert oracle_interval(by_hand)[0] > 0
    users = (ids("a", 300), ids("b", 300))
    choice, reason = prefer(simple, "base", rich, refs, seed=0, users=users)
    assert choice is rich
    assert reason.startswith("beats itemknn_recent beyond noise on the validation users pooled")
    assert f"{17 / 77:+.3f} [" in reason and "600 users" in reason
    kept, reason = prefer(simple, "base", rich, refs, seed=0)
    assert kept is simple and reason.startswith("base; fused not better by more than noise")


def test_the_same_people_on_both_protocols_are_one_unit_and_their_lead_stays_noise() -> None:
    """``near_case`` where both protocols hold the same 300 people (every time-cut user is also
    a latest-item user): each is one unit, twice their scaled difference, so the pooled sample
    is one protocol's lead doubled, still ≈ 1.71 standard errors: the simpler choice stays.
    Counted as 600 distinct units the same evidence would read beyond noise (test above)."""
    simple, rich, refs = near_case()
    one_unit = 2 * (rich.per_user[0] - simple.per_user[0]) / (77 / 300)
    assert oracle_interval(one_unit)[0] < 0
    same = ids("u", 300)
    kept, reason = prefer(simple, "base", rich, refs, seed=0, users=(same, same))
    assert kept is simple and "fused not better by more than noise" in reason


def test_a_pooled_lead_beyond_noise_does_not_ship_what_is_worse_beyond_noise_somewhere() -> None:
    """Protocol 1 (1,000 users): the simpler choice finds 0–99, the richer 0–199 (+100, beyond
    noise); protocol 2 (300 other users): 0–99 against 0–39 (60 lost, none gained: worse beyond
    noise; the richer one's worst share 0.4 is below the simpler one's 0.5, so clause (1) does
    not hold). Pooled in units of (0.2, 1/3) the lead is (100 · 5 − 60 · 3) / 1,300 ≈ +0.25 a
    user, far beyond noise — yet a protocol where it is worse beyond noise vetoes it, as it
    vetoes clause (2)."""
    simple = tried("itemknn_recent", hits(1000, range(0, 100)), hits(300, range(0, 100)))
    rich = tried("fused", hits(1000, range(0, 200)), hits(300, range(0, 40)))
    refs = Refs((0.2, 1 / 3))
    pooled = np.concatenate(
        [(rich.per_user[0] - simple.per_user[0]) / 0.2, (rich.per_user[1] - simple.per_user[1]) * 3]
    )
    np.testing.assert_allclose(pooled.mean(), 320 / 1300)
    assert oracle_interval(pooled)[0] > 0
    assert oracle_interval(rich.per_user[1] - simple.per_user[1])[1] < 0
    users = (ids("a", 1000), ids("b", 300))
    kept, reason = prefer(simple, "base", rich, refs, seed=0, users=users)
    assert kept is simple and "fused not better by more than noise" in reason
