"""The console's overview figures: events per minute over the last hour, dead letters, and the
request latency of the answering process.

Each figure comes from where it already lives: events and dead letters from the store (counted
in SQL), latency from the process's own Prometheus histogram, so the overview adds no bookkeeping
to the hot path. The latency is this process's since it started (with several workers, each
answers for itself), over the traffic routes only: the console's own admin calls, ``/metrics``
scrapes, health probes and requests no route matched (a browser's favicon, scanners) would
otherwise dilute it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Histogram

from recsmith.store.base import MINUTE_US, EventStore

#: Route prefixes left out of the latency figures (operations, not traffic).
NOT_TRAFFIC = ("/v1/admin", "/console", "/metrics", "/health")


def minute_series(counts: list[tuple[int, int]], now: datetime, minutes: int) -> list[int]:
    """Events in each of the last ``minutes`` whole-or-current minutes, oldest first, zeros
    included (a chart needs the quiet minutes too); the last entry is the current minute."""
    last = int(now.timestamp() * 1_000_000) // MINUTE_US
    series = [0] * minutes
    for minute, n in counts:
        slot = minutes - 1 - (last - minute)
        if 0 <= slot < minutes:
            series[slot] = n
    return series


def histogram_quantile(bounds: list[float], cumulative: list[float], q: float) -> float | None:
    """Prometheus's ``histogram_quantile``: linear within the bucket holding rank ``q * total``
    (the first bucket starts at 0); a rank in the ``+Inf`` bucket gives the largest finite
    bound. ``bounds`` are the finite upper bounds, ``cumulative`` their counts then ``+Inf``'s."""
    total = cumulative[-1]
    if total <= 0:
        return None
    rank = q * total
    below, lower = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=False):
        if count >= rank:
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        below, lower = count, bound
    return bounds[-1]


def latency(histogram: Histogram, unmatched: str) -> dict[str, Any]:
    """p50 and p99 in milliseconds of the traffic routes' requests, summed over routes,
    methods and statuses, with how many requests they cover; ``unmatched`` is the route label
    of requests no route matched (``serving.metrics.UNMATCHED``, passed in: serving imports
    this module)."""
    buckets: dict[float, float] = {}
    for metric in histogram.collect():
        for sample in metric.samples:
            if not sample.name.endswith("_bucket"):
                continue
            route = sample.labels["route"]
            if route == unmatched or route.startswith(NOT_TRAFFIC):
                continue
            bound = float(sample.labels["le"])
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
    if not buckets:
        return {"requests": 0, "p50_ms": None, "p99_ms": None}
    ordered = sorted(buckets)
    finite = [b for b in ordered if b != float("inf")]
    cumulative = [buckets[b] for b in ordered]

    def ms(q: float) -> float | None:
        value = histogram_quantile(finite, cumulative, q)
        return None if value is None else value * 1000

    return {"requests": int(cumulative[-1]), "p50_ms": ms(0.5), "p99_ms": ms(0.99)}


def overview(
    store: EventStore,
    histogram: Histogram,
    unmatched: str,
    now: datetime,
    minutes: int = 60,
    latest: int = 5,
) -> dict[str, Any]:
    """What ``GET /v1/admin/overview`` answers: events per minute of event time over the last
    ``minutes``, dead letters of the last day (count and the newest ``latest``), latency."""
    start = now - timedelta(minutes=minutes - 1, seconds=now.second, microseconds=now.microsecond)
    end = start + timedelta(minutes=minutes)  # the end of the current minute
    per_minute = minute_series(store.events_per_minute(start, end), now, minutes)
    day_ago = now - timedelta(days=1)
    count, newest = store.dead_letter_summary(day_ago, latest)
    return {
        "now": now.isoformat(),
        "events_per_minute": {"since": start.isoformat(), "counts": per_minute},
        "dead_letters": {
            "since": day_ago.isoformat(),
            "count": count,
            "latest": [
                {
                    "received_at": d.received_at.isoformat(),
                    "source": d.source,
                    "reasons": [f"{e['field']}: {e['reason']}" for e in d.errors],
                }
                for d in newest
            ],
        },
        "latency": latency(histogram, unmatched),
    }
