"""``FeatureSampler``: which queries are sampled, which of their rows, the per-minute cap, and
the rows arriving in a real store (SQLite) with retention applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsmith.config import MonitorSettings
from recsmith.monitoring.feature_rows import decode
from recsmith.serving.feature_sampler import FeatureSampler
from recsmith.store.sqlite import SQLiteStore


def _picks(sampler: FeatureSampler, sizes: list[int]) -> list[list[int] | None]:
    out = []
    for n in sizes:
        picked = sampler.pick(n)
        out.append(None if picked is None else picked.tolist())
    return out


def test_one_query_in_every_n_is_picked_across_calls(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    sampler = FeatureSampler(store, MonitorSettings(feature_sample_every=3))
    # queries 0..9 in calls of 2, 2, 1, 5: queries 0, 3, 6, 9 are sampled
    assert _picks(sampler, [2, 2, 1, 5]) == [[0], [1], None, [1, 4]]
    off = FeatureSampler(store, MonitorSettings(feature_sample_every=0))
    assert _picks(off, [5, 5]) == [None, None] and not off.enabled
    store.close()


def test_rows_are_capped_per_minute_and_stored(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite")
    now = [0.0]
    settings = MonitorSettings(feature_rows_per_minute=30, feature_rows_kept=25)
    sampler = FeatureSampler(store, settings, clock=lambda: now[0])
    query = np.repeat(np.arange(3), 25)  # three queries of 25 candidate rows
    features = np.column_stack([np.arange(75.0), np.full(75, 2.5)]).astype(np.float32)
    sampler.tap("r1", np.array([0, 2]))(features, query)  # 2 × 20 rows wanted, 30 allowed
    assert (sampler.recorded, sampler.limited) == (30, 10)
    assert sampler.flush() == 30
    stored = decode(store.feature_samples("r1", 0), 2)
    # query 0's 20 rows spread over its 25 (0, 1, 2, 3, 5, ...), then query 2's first ten
    want = [j * 25 // 20 for j in range(20)] + [50 + j * 25 // 20 for j in range(10)]
    assert sorted(stored[:, 0].tolist()) == want and set(stored[:, 1].tolist()) == {2.5}
    now[0] = 20.0  # a third of a minute: ten more rows
    sampler.tap("r1", np.array([1]))(features, query)
    assert (sampler.recorded, sampler.limited) == (40, 20)
    assert sampler.flush() == 10 and sampler.flush() == 0
    assert sampler.retain() == 15  # feature_rows_kept = 25: the newest 25 stay
    assert len(store.feature_samples("r1", 0)) == 25
    store.close()
