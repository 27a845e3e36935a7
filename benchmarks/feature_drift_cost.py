"""What feature-drift sampling costs: the request path of an unsampled query, a sampled query's
pipeline call, and the monitor's feature_psi over a full store of sampled rows.

1. Unsampled query: the code the coalescer adds to every pipeline call (the ranker check and
   ``FeatureSampler.pick`` finding no sampled query), timed over a million calls against the same
   loop without a sampler (same run, interleaved rounds).
2. Sampled query: ``Pipeline.answer`` for one user of the device shop with the sampler's tap
   (its 20 rows picked, encoded and buffered) against the same call without it, interleaved.
3. Training: ``pipeline_feature_profile`` (the finished pipeline asked for every shop user, 400)
   against ``pipeline_score_profile`` (the step before it), interleaved.
4. Monitor: ``sampled_feature_psi`` (read, decode, PSI of every feature) and the whole
   ``monitor`` call over ``--rows`` stored rows (the default retention cap) of the release, in
   SQLite.

    .venv/bin/python benchmarks/feature_drift_cost.py [--rows 200000 --rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from calibration import calibration_line

from recsmith.config import EventSettings, MonitorSettings
from recsmith.features.interactions import Interactions
from recsmith.monitoring.feature_rows import encode
from recsmith.monitoring.features import pipeline_feature_profile
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.scores import pipeline_score_profile
from recsmith.monitoring.signals import monitor, sampled_feature_psi
from recsmith.pipeline.artifact import save_pipeline
from recsmith.serving.feature_sampler import FeatureSampler
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.device_shop import device_shop_events, device_shop_pipeline

CALLS = 1_000_000


def _guard_ns(sampler: FeatureSampler | None, served: object) -> float:
    """ns per call of the coalescer's sampling guard (``Coalescer._call``) for one query."""
    started = time.perf_counter_ns()
    for _ in range(CALLS):
        if sampler is not None and getattr(served, "ranker", None) is not None:
            sampler.pick(1)
    return (time.perf_counter_ns() - started) / CALLS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(calibration_line())
    print(f"load average {os.getloadavg()[0]:.2f}")
    tmp = Path(tempfile.mkdtemp())
    store = SQLiteStore(tmp / "s.sqlite")
    events = device_shop_events()
    pipeline = device_shop_pipeline(events)
    # never sampled (1 in 10**9), and never rate limited, for the timings below
    rare = FeatureSampler(store, MonitorSettings(feature_sample_every=10**9))
    rare.pick(1)
    base, guarded = [], []
    for _ in range(args.rounds):
        base.append(_guard_ns(None, pipeline))
        guarded.append(_guard_ns(rare, pipeline))
    b, g = statistics.median(base), statistics.median(guarded)
    print(f"unsampled query: {g:.0f} ns with the sampler, {b:.0f} ns without: +{g - b:.0f} ns")

    every = FeatureSampler(store, MonitorSettings(feature_rows_per_minute=10**9))
    users = list(pipeline.bundle.users.external_ids)[:200]
    plain, tapped = [], []
    for _ in range(args.rounds):
        for user in users:
            started = time.perf_counter()
            pipeline.answer([user], 10, context=[{"device": "mobile"}])
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            tap = every.tap(pipeline.version, np.zeros(1, np.int64))
            pipeline.answer([user], 10, context=[{"device": "mobile"}], feature_tap=tap)
            tapped.append(time.perf_counter() - started)
    p, t = statistics.median(plain) * 1e3, statistics.median(tapped) * 1e3
    print(f"sampled query: answer {t:.3f} ms with the tap, {p:.3f} ms without: +{t - p:.3f} ms")
    print(f"  ({every.recorded} rows buffered over {len(tapped)} sampled calls)")
    # the tap alone, on one query's real feature rows: what the difference above is made of
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    pipeline.answer([users[0]], 10, feature_tap=lambda f, q: seen.append((f, q)))
    features, query = seen[0]
    tap = every.tap(pipeline.version, np.zeros(1, np.int64))
    timed = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for _ in range(2000):
            tap(features, query)
        timed.append((time.perf_counter() - started) / 2000 * 1e6)
    print(f"  the tap alone: {statistics.median(timed):.1f} µs for {len(features)} candidate rows")

    data = Interactions.from_events(events, EventSettings().weights)
    scores, features = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        pipeline_score_profile(pipeline)
        scores.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline_feature_profile(pipeline, data)
        features.append(time.perf_counter() - started)
    print(
        f"training: feature profile {statistics.median(features):.3f} s, score profile "
        f"{statistics.median(scores):.3f} s ({data.n_users} users)"
    )

    save_pipeline(pipeline, tmp / "pipe")
    view = ReleaseView.read(tmp / "pipe")
    width = len(view.features["names"])  # type: ignore[index]
    rng = np.random.default_rng(0)
    now_us = time.time_ns() // 1000
    for start in range(0, args.rows, 50_000):
        block = rng.normal(size=(min(50_000, args.rows - start), width)).astype(np.float32)
        store.append_feature_samples(encode(view.version, now_us, block))
    since = datetime.now(UTC) - timedelta(days=1)
    psi_s, monitor_s = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        n, _ = sampled_feature_psi(store, view, since)
        psi_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        monitor(store, view, since, MonitorSettings())
        monitor_s.append(time.perf_counter() - started)
    print(
        f"monitor over {n} rows x {width} features (SQLite): feature_psi "
        f"{statistics.median(psi_s):.3f} s, whole monitor {statistics.median(monitor_s):.3f} s"
    )
    print(f"load average {os.getloadavg()[0]:.2f}")
    store.close()


if __name__ == "__main__":
    main()
