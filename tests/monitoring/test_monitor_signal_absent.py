"""``recsmith_monitor_signal{signal=…}`` has no sample while a signal cannot be computed (it was
NaN, which turns ``max by (signal)`` on the dashboard into NaN); its level stays (-1, not judged),
and a signal that becomes known again is exported again."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from recsmith.monitoring.gauges import MonitorGauges
from recsmith.monitoring.signals import MonitorReport, Signal


def _report(**values: float | None) -> MonitorReport:
    signals = [
        Signal(name, value, "unknown" if value is None else "ok", 0.1, 0.2)
        for name, value in values.items()
    ]
    return MonitorReport("v1", datetime(2026, 12, 1, tzinfo=UTC), 10, signals)


def _exported(registry: CollectorRegistry) -> dict[str, dict[str, float]]:
    """Per family, the value by ``signal`` label (families with no sample: an empty dict)."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        if family.name in ("recsmith_monitor_signal", "recsmith_monitor_level"):
            out[family.name] = {s.labels["signal"]: s.value for s in family.samples}
    return out


def test_an_unknown_signal_is_absent_not_nan() -> None:
    registry = CollectorRegistry()
    gauges = MonitorGauges.create(registry)
    gauges.show(_report(unknown_users=None, model_age_h=3.0, unknown_items=math.nan))
    assert _exported(registry) == {
        "recsmith_monitor_signal": {"model_age_h": 3.0},
        "recsmith_monitor_level": {"unknown_users": -1, "model_age_h": 0, "unknown_items": 0},
    }
    gauges.show(_report(unknown_users=0.0, model_age_h=None, unknown_items=math.inf))
    assert _exported(registry)["recsmith_monitor_signal"] == {"unknown_users": 0.0}
    gauges.show(_report(unknown_users=None, model_age_h=None, unknown_items=None))
    assert _exported(registry)["recsmith_monitor_signal"] == {}  # described, no sample
