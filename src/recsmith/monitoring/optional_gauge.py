"""An unlabelled Prometheus gauge that exports no sample while its value is unknown.

prometheus_client's ``Gauge`` always exports a sample: 0 before anything sets it, NaN when NaN is
set. For a quantity that is not known yet (the exposure Gini of a decision log with no lists, the
narrowing share while no unit has enough lists) both mislead: 0 reads as perfectly even exposure,
and NaN poisons ``max()`` and alert comparisons. Prometheus' own convention for "no value" is an
absent series, which ``absent()`` and ``or`` handle; so this gauge describes its family (HELP and
TYPE, so dashboards and ``tests/monitoring/test_ops_files.py`` still find the name) and adds the
sample only while its value is finite. A labelled gauge does the same per label set with
:func:`set_or_remove` (its family and label names stay described by prometheus_client's own
``Gauge``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily


class OptionalGauge:
    """See module docstring. ``set`` takes any float; NaN or ±inf removes the sample."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name, self.documentation = name, documentation
        self.value = math.nan  # a float's assignment is atomic: no lock for a scrape's read
        registry.register(self)

    def set(self, value: float) -> None:
        self.value = float(value)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation)
        value = self.value
        if math.isfinite(value):
            family.add_metric([], value)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation)


def set_or_remove(gauge: Gauge, value: float | None, *labels: str) -> None:
    """Set ``gauge``'s sample for ``labels`` to ``value``, or remove that sample while the value
    is unknown (None, NaN or ±inf), so the series is absent rather than NaN."""
    if value is not None and math.isfinite(value):
        gauge.labels(*labels).set(value)
    else:
        gauge.remove(*labels)
