"""The drift and freshness signals of the served release, each judged against its thresholds.

Drift compares what the release learnt from with what arrives now:

* ``event_mix_js`` — Jensen–Shannon divergence (bits) of the event-type mix, training vs window;
* ``item_popularity_psi`` — PSI of where the window's (user, item) pairs fall among ten buckets of
  the training catalogue, cut so that each holds a tenth of the training interactions (the head
  bucket is a few items, the last one the long tail): traffic moving to the tail, or to a
  different head, shows here even when the set of items is the same;
* ``unknown_users`` / ``unknown_items`` — the share of the window's users the release has no row
  for (they get fallbacks) and of its events on items it has never seen;
* ``score_psi`` — PSI of the scores the release served its known users in the window (the
  decision log) against those it gave at training (``monitoring.scores``); judged against
  ``min_events`` served scores rather than events;
* ``feature_psi`` — the largest PSI among the ranker's input features, sampled by the server
  (``feature_samples``) against those the release computed at training (``monitoring.features``);
  every feature's PSI is in the report (``features``), and the note names the worst
  ``WORST``; judged against ``min_events`` sampled rows.

Freshness: ``model_age_h``, ``events_since_training``, ``catalog_changes_since_training``,
``newest_event_age_h`` (how long ago the newest stored event happened: a stalled ingest shows as
a growing value).

A drift signal over fewer than ``min_events`` window events is reported as ``insufficient``
rather than judged: a few dozen events will "drift" by chance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np

from recsmith.config import MonitorSettings
from recsmith.monitoring.divergence import jensen_shannon, psi
from recsmith.monitoring.feature_rows import decode
from recsmith.monitoring.features import WORST, feature_psi
from recsmith.monitoring.recent import RecentTraffic, read_recent
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.scores import score_psi, served_scores
from recsmith.store.base import EventStore, micros

Status = Literal["ok", "warn", "alert", "insufficient", "unknown", "info"]
#: A report's overall status: the worst signal's, or ``no_data`` for a window without events.
Overall = Literal["ok", "warn", "alert", "no_data"]
#: Buckets of the training popularity curve the PSI compares.
POPULARITY_BUCKETS = 10
DRIFT = (
    "event_mix_js",
    "item_popularity_psi",
    "unknown_users",
    "unknown_items",
    "score_psi",
    "feature_psi",
)
FRESHNESS = (
    "model_age_h",
    "events_since_training",
    "catalog_changes_since_training",
    "newest_event_age_h",
)
SIGNALS = DRIFT + FRESHNESS


@dataclass(frozen=True)
class Signal:
    name: str
    value: float | None
    status: Status
    warn: float | None
    alert: float | None
    note: str = ""


@dataclass(frozen=True)
class MonitorReport:
    version: str
    since: datetime
    window_events: int
    signals: list[Signal]
    #: each ranker feature's PSI, largest first (empty: no profile or no sampled rows)
    features: dict[str, float] = field(default_factory=dict)

    def worst(self) -> Overall:
        """``alert`` if any signal alerts, else ``warn`` if any warns, else ``ok``; but
        ``no_data`` rather than ``ok`` for a window without a single event, where no drift
        signal was judged: "ok" there would vouch for traffic nobody saw (a stalled ingest)."""
        statuses = {s.status for s in self.signals}
        if "alert" in statuses or "warn" in statuses:
            return "alert" if "alert" in statuses else "warn"
        return "no_data" if self.window_events == 0 else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "since": self.since.isoformat(),
            "window_events": self.window_events,
            "status": self.worst(),
            "signals": [asdict(s) for s in self.signals],
            "feature_psi": self.features,
        }


def monitor(
    store: EventStore,
    release: ReleaseView,
    since: datetime,
    settings: MonitorSettings,
    now: datetime | None = None,
) -> MonitorReport:
    """Every signal of ``release`` against the store's events since ``since``."""
    now = now or datetime.now(UTC)
    profile = release.profile or {}
    trained_until = profile.get("last_ts_us")
    recent = read_recent(store, since, trained_until)
    served = served_scores(store, release.version, release.users, since)
    score_drift = score_psi(release.scores, served) if release.scores is not None else None
    sampled, features = sampled_feature_psi(store, release, since)
    values = _drift(release, recent) | {
        "score_psi": score_drift,
        "feature_psi": next(iter(features.values()), None),
        "model_age_h": (now - release.created_at).total_seconds() / 3600,
        "events_since_training": float(recent.since_training) if trained_until else None,
        "catalog_changes_since_training": float(
            len(store.items_changed_since(micros(release.created_at) or 0))
        ),
        "newest_event_age_h": None
        if recent.newest_ts_us is None
        else max(0.0, (micros(now) or 0) - recent.newest_ts_us) / 3.6e9,
    }
    counted = {"score_psi": len(served), "feature_psi": sampled}
    profiles = {"score_psi": release.scores, "feature_psi": release.features}
    signals = [
        _judge(
            name,
            values[name],
            settings,
            counted.get(name, recent.n_events),
            profiles.get(name, release.profile) is not None,
        )
        for name in SIGNALS
    ]
    if features:
        worst = "worst: " + ", ".join(f"{n} {v:.3g}" for n, v in list(features.items())[:WORST])
        at = SIGNALS.index("feature_psi")
        note = signals[at].note
        signals[at] = replace(signals[at], note=f"{note}; {worst}" if note else worst)
    return MonitorReport(release.version, since, recent.n_events, signals, features)


def sampled_feature_psi(
    store: EventStore, release: ReleaseView, since: datetime
) -> tuple[int, dict[str, float]]:
    """How many feature rows the servers sampled for ``release`` since ``since``, and each
    feature's PSI over them against the release's profile (empty without a profile or rows)."""
    if release.features is None:
        return 0, {}
    rows = decode(
        store.feature_samples(release.version, micros(since) or 0), len(release.features["names"])
    )
    return len(rows), feature_psi(release.features, rows)


def _drift(release: ReleaseView, recent: RecentTraffic) -> dict[str, float | None]:
    if recent.n_events == 0:
        return dict.fromkeys(DRIFT)  # score_psi comes from the decision log, not events
    out: dict[str, float | None] = {"event_mix_js": None}
    trained_types = (release.profile or {}).get("event_types") or {}
    if trained_types:
        names = sorted(set(trained_types) | set(recent.event_types))
        out["event_mix_js"] = jensen_shannon(
            np.array([trained_types.get(n, 0) for n in names], dtype=np.float64),
            np.array([recent.event_types.get(n, 0) for n in names], dtype=np.float64),
        )
    rows = release.items.to_index(recent.pairs["item_id"].to_numpy(dtype=object))
    known_rows = rows[rows >= 0]
    if len(known_rows) and release.item_users.sum() > 0:
        bucket = popularity_buckets(release.item_users)
        out["item_popularity_psi"] = psi(
            np.bincount(bucket, weights=release.item_users, minlength=POPULARITY_BUCKETS),
            np.bincount(bucket[known_rows], minlength=POPULARITY_BUCKETS),
        )
    else:
        out["item_popularity_psi"] = None
    users = recent.users
    out["unknown_users"] = float(np.mean(release.users.to_index(users) < 0)) if len(users) else None
    item_rows = release.items.to_index(recent.item_events.index.to_numpy(dtype=object))
    counts = recent.item_events.to_numpy(dtype=np.float64)
    out["unknown_items"] = float(counts[item_rows < 0].sum() / counts.sum())
    return out


def popularity_buckets(item_users: np.ndarray) -> np.ndarray:
    """Each item's bucket 0..9 by its place on the training popularity curve: items sorted from
    most to least popular, cut where the cumulative share of interactions crosses each tenth."""
    order = np.argsort(-item_users, kind="stable")
    counts = item_users[order].astype(np.int64)
    # an item's bucket is decided by the mass *before* it, so the most popular item is bucket 0;
    # integer arithmetic, because 2/10 in floating point lands in bucket 1
    before = np.cumsum(counts) - counts
    bucket = np.empty(len(item_users), dtype=np.int64)
    bucket[order] = np.minimum(before * POPULARITY_BUCKETS // counts.sum(), POPULARITY_BUCKETS - 1)
    return bucket


def _judge(
    name: str, value: float | None, settings: MonitorSettings, n_events: int, profiled: bool
) -> Signal:
    warn, alert = settings.thresholds.get(name, (None, None))
    if value is None:
        why = (
            "not recorded for this release (a single model, or trained before score profiles)"
            if not profiled and name == "score_psi"
            else "no scores served to known users in the window (decision log)"
            if name == "score_psi"
            else "not recorded for this release (no ranker, or trained before feature profiles)"
            if not profiled and name == "feature_psi"
            else "no feature rows sampled in the window ([monitor] feature_sample_every)"
            if name == "feature_psi"
            else "no events in the window"
            if n_events == 0
            else "not recorded for this release (trained before data profiles: retrain)"
            if not profiled and name in ("event_mix_js", "events_since_training")
            else "nothing to compare"
        )
        return Signal(name, None, "unknown", warn, alert, why)
    if name in DRIFT and n_events < settings.min_events:
        what = {"score_psi": "served scores", "feature_psi": "sampled feature rows"}.get(
            name, "events"
        )
        note = f"{n_events} {what} in the window: too few to judge (min_events = "
        return Signal(name, value, "insufficient", warn, alert, note + f"{settings.min_events})")
    if warn is None and alert is None:
        return Signal(name, value, "info", warn, alert)
    status: Status = (
        "alert"
        if alert is not None and value >= alert
        else "warn"
        if warn is not None and value >= warn
        else "ok"
    )
    return Signal(name, value, status, warn, alert)
