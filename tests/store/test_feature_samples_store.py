"""Sampled ranker feature rows (``monitoring.feature_rows``) in both store backends: stored and
read back per release and time, bytes for bytes; retention by age and by count; a PostgreSQL
reader that finds no table gets no rows rather than an error."""

from __future__ import annotations

import numpy as np

from recsmith.monitoring.feature_rows import decode, encode
from recsmith.store.base import EventStore


def test_rows_come_back_per_release_and_time(store: EventStore) -> None:
    assert store.feature_samples("r1", 0) == []  # no table yet (PostgreSQL): nothing, no error
    early = np.array([[1.0, np.nan, 3.5], [4.0, 5.0, -6.25]], np.float32)
    late = np.array([[7.0, 8.0, 9.0]], np.float32)
    other = np.array([[0.5, 0.5, 0.5]], np.float32)
    assert store.append_feature_samples(encode("r1", 100, early)) == 2
    store.append_feature_samples(encode("r1", 200, late) + encode("r2", 150, other))
    assert store.append_feature_samples([]) == 0
    got = decode(store.feature_samples("r1", 0), 3)
    np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(np.vstack([early, late]), axis=0))
    np.testing.assert_array_equal(decode(store.feature_samples("r1", 150), 3), late)
    np.testing.assert_array_equal(decode(store.feature_samples("r2", 0), 3), other)
    assert decode(store.feature_samples("r1", 0), 4).shape == (0, 4)  # another width: left out


def test_retention_drops_old_rows_then_keeps_the_newest(store: EventStore) -> None:
    assert store.trim_feature_samples(10, 5) == 0  # nothing stored: nothing to trim
    for at in range(10):  # one row per time 0..9, value = its time
        store.append_feature_samples(encode("r1", at, np.array([[float(at)]], np.float32)))
    assert store.trim_feature_samples(2, 100) == 2  # older than 2: rows 0 and 1
    assert store.trim_feature_samples(0, 3) == 5  # all but the newest three
    kept = decode(store.feature_samples("r1", 0), 1)
    assert sorted(kept[:, 0].tolist()) == [7.0, 8.0, 9.0]
