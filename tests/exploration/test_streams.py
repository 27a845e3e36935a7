"""Per-request random numbers: the same id gives the same draws in any batch, and draws are
uniform and independent across streams."""

from __future__ import annotations

import numpy as np
from scipy import stats

from recsmith.exploration.streams import Stream, seeds_of, uniforms


def test_a_request_draws_the_same_whatever_batch_it_is_in() -> None:
    alone = uniforms(seeds_of(["abc"]), Stream.COIN, 5)
    batch = uniforms(seeds_of(["x", "abc", "y"]), Stream.COIN, 5)
    assert np.array_equal(alone[0], batch[1])
    assert not np.array_equal(batch[0], batch[1])


def test_streams_are_different_sequences() -> None:
    seeds = seeds_of(["abc"])
    assert not np.allclose(uniforms(seeds, Stream.COIN, 4), uniforms(seeds, Stream.POOL, 4))


def test_draws_are_uniform_and_uncorrelated() -> None:
    u = uniforms(seeds_of([f"r{i}" for i in range(20_000)]), Stream.GUMBEL, 2)
    assert stats.kstest(u[:, 0], "uniform").pvalue > 0.001
    assert stats.kstest(u[:, 1], "uniform").pvalue > 0.001
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.03
    assert u.min() >= 0.0 and u.max() < 1.0
