"""Drift and freshness as Prometheus gauges, recomputed by each server process on a timer.

Computed in the background every ``[monitor] refresh_s`` (a scan of the recent window is far too
slow for a scrape), from the same ``monitoring.signals.monitor`` that ``recsmith monitor`` prints,
so the console, alerts and the command never disagree. One labelled gauge per quantity keeps the
series count fixed: ``recsmith_monitor_signal{signal=…}`` holds the value (no sample while it is
unknown: an absent series, not a NaN that poisons ``max``; see ``monitoring.optional_gauge``) and
``recsmith_monitor_level{signal=…}`` its level (0 ok, 1 warn, 2 alert, -1 not judged) for alert
rules that should not repeat the thresholds. ``recsmith_monitor_feature_psi{feature=…}`` holds
each ranker input feature's PSI (``monitoring.features``): as many series as the served release
has features, cleared when it changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry, Gauge

from recsmith.config import MonitorSettings, ServingSettings
from recsmith.decisions.timespec import parse_time
from recsmith.monitoring.optional_gauge import set_or_remove
from recsmith.monitoring.release_view import ReleaseView
from recsmith.monitoring.signals import MonitorReport, monitor
from recsmith.store.base import EventStore

log = logging.getLogger(__name__)
#: The first computation waits this long (or ``refresh_s`` if shorter) after start.
FIRST_REFRESH_S = 5.0
LEVELS = {"ok": 0, "info": 0, "warn": 1, "alert": 2, "insufficient": -1, "unknown": -1}


@dataclass(frozen=True)
class MonitorGauges:
    value: Gauge
    level: Gauge
    refreshed: Gauge
    feature: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> MonitorGauges:
        return cls(
            value=Gauge(
                "recsmith_monitor_signal",
                "Drift and freshness of the served release (recsmith monitor), by signal; no "
                "sample while it cannot be computed.",
                ("signal",),
                registry=registry,
            ),
            level=Gauge(
                "recsmith_monitor_level",
                "Each monitor signal's level against [monitor] thresholds: 0 ok, 1 warn, "
                "2 alert, -1 not judged (too few events, or unknown).",
                ("signal",),
                registry=registry,
            ),
            refreshed=Gauge(
                "recsmith_monitor_refreshed_timestamp_seconds",
                "When the monitor signals were last computed (Unix time).",
                registry=registry,
            ),
            feature=Gauge(
                "recsmith_monitor_feature_psi",
                "PSI of each ranker input feature sampled by the servers against the served "
                "release's training profile (the largest is the feature_psi signal).",
                ("feature",),
                registry=registry,
            ),
        )

    def show(self, report: MonitorReport) -> None:
        for signal in report.signals:
            set_or_remove(self.value, signal.value, signal.name)
            self.level.labels(signal=signal.name).set(LEVELS[signal.status])
        self.feature.clear()  # another release may have other features
        for name, value in report.features.items():
            self.feature.labels(feature=name).set(value)
        self.refreshed.set(time.time())


class DriftWatch:
    """Recomputes the gauges every ``settings.refresh_s`` for whatever release is served now.

    ``served_dir`` says where the served release lives (None while nothing is served); its
    ``ReleaseView`` is read once per version, not once per refresh."""

    def __init__(
        self,
        gauges: MonitorGauges,
        store: EventStore,
        settings: MonitorSettings,
        served_dir: Callable[[], Path | None],
    ) -> None:
        self.gauges, self.store, self.settings = gauges, store, settings
        self.served_dir = served_dir
        self._view: tuple[Path, ReleaseView] | None = None

    def refresh(self) -> MonitorReport | None:
        where = self.served_dir()
        if where is None:
            return None
        if self._view is None or self._view[0] != where:
            self._view = (where, ReleaseView.read(where))
        since = parse_time(self.settings.window, "monitor.window")
        assert since is not None
        report = monitor(self.store, self._view[1], since, self.settings)
        self.gauges.show(report)
        return report

    async def watch(self) -> None:
        # not at once: a starting server (and its supervisor's readiness check) comes first
        await asyncio.sleep(min(self.settings.refresh_s, FIRST_REFRESH_S))
        while True:
            try:
                await run_in_threadpool(self.refresh)
            except Exception as exc:  # a store hiccup must not end the loop: try again later
                log.warning("monitor gauges not refreshed: %s", exc)
            await asyncio.sleep(self.settings.refresh_s)


def served_release_dir(serving: ServingSettings, version: str | None) -> Path | None:
    """Where the release being served (``version``) lives: in the registry when it was deployed
    there, else ``serving.model_dir``; None while nothing is served."""
    if version is None:
        return None
    if serving.registry is not None:
        where = serving.registry / "versions" / version
        if (where / "manifest.json").is_file():
            return where
    return serving.model_dir
