"""Prometheus metrics for one app: a private registry and the collectors (the app's outer layer,
``serving.edge``, times every request into ``request_duration``).

Each app owns its ``CollectorRegistry`` (never prometheus_client's global default) so that two apps
in one process, as in the tests, do not collide on metric names. Labels hold only small, fixed
vocabularies: the route *template* (``/v1/users/{user_id}/recommendations``), never the raw path,
because a label per user or item id would grow the series without bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase
from starlette.types import Scope

from recsmith.monitoring.optional_gauge import OptionalGauge
from recsmith.serving.connection_balance import ClosedToBalance

#: Fast endpoints answer in about a millisecond, so the buckets start well below the default 5 ms.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Item groups exported one series each by ``recsmith_exposure_share``; the rest are summed.
EXPOSURE_GROUPS = 20
#: Methods kept as label values; anything else becomes "other" (clients can send any token).
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
#: Route label for requests no route matched (404s): one series instead of one per probed path.
UNMATCHED = "<unmatched>"


@dataclass(frozen=True, slots=True)
class Metrics:
    """The collectors of one app, registered in its own registry."""

    registry: CollectorRegistry
    request_duration: Histogram
    events_ingested: Counter
    recommendations: Counter
    model_info: Gauge
    degraded: Gauge
    stage_duration: Histogram
    candidates: Counter
    batch_size: Histogram
    holds: Counter
    hold_seconds: Counter
    response_cache: Counter
    impressions: Counter
    attributed: Counter
    decisions_dropped: Counter
    exposure_share: Gauge
    exposure_gini: OptionalGauge
    narrowing: OptionalGauge
    #: ``child``'s children by (metric, label values)
    _children: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(ClosedToBalance())
        return cls(
            registry=registry,
            request_duration=Histogram(
                "recsmith_http_request_duration_seconds",
                "Time from request start to the end of the response, by route template.",
                ("method", "route", "status"),
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            events_ingested=Counter(
                "recsmith_events_ingested_total",
                "Events received over HTTP by outcome (accepted, duplicate, rejected).",
                ("status",),
                registry=registry,
            ),
            recommendations=Counter(
                "recsmith_recommendations_total",
                "Recommendation lists served, by fallback tier used (none, session, category, "
                "segment or popular).",
                ("fallback",),
                registry=registry,
            ),
            model_info=Gauge(
                "recsmith_model_info",
                "The model version being served (value is always 1).",
                ("version",),
                registry=registry,
            ),
            stage_duration=Histogram(
                "recsmith_pipeline_stage_duration_seconds",
                "Time per recommendation stage (retrieval, ranking, rerank, model) per pipeline "
                "call (one call answers a batch of coalesced requests).",
                ("stage",),
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            candidates=Counter(
                "recsmith_pipeline_items_total",
                "Items served, by the candidate source that proposed them.",
                ("source",),
                registry=registry,
            ),
            batch_size=Histogram(
                "recsmith_coalesced_batch_size",
                "Recommendation requests answered by one pipeline call (concurrent requests are "
                "coalesced; 1 on an idle server).",
                buckets=(1, 2, 4, 8, 16, 32, 64),
                registry=registry,
            ),
            holds=Counter(
                "recsmith_coalesce_holds_total",
                "Pipeline calls held for company under load (serving.coalesce_max_wait_ms; "
                "a held flush answers every group then waiting).",
                registry=registry,
            ),
            hold_seconds=Counter(
                "recsmith_coalesce_hold_seconds_total",
                "Seconds pipeline calls were held for company, summed over the held flushes.",
                registry=registry,
            ),
            response_cache=Counter(
                "recsmith_response_cache_total",
                "Recommendation requests answered from the response cache (hit) or computed "
                "(miss).",
                ("result",),
                registry=registry,
            ),
            impressions=Counter(
                "recsmith_impressions_total",
                "Items shown in served lists (each list recorded in the decision log), by route, "
                "release and experiment variant ('' outside experiments).",
                ("route", "release", "variant"),
                registry=registry,
            ),
            attributed=Counter(
                "recsmith_attributed_events_total",
                "Events attributed to a served list, by outcome kind (click, cart, purchase, or "
                "the event type when unmapped), rule (explicit, window), release and variant.",
                ("kind", "rule", "release", "variant"),
                registry=registry,
            ),
            decisions_dropped=Counter(
                "recsmith_decisions_dropped_total",
                "Served lists the decision log could not keep (its buffer was full: the oldest "
                "go first), or failed to store for a reason other than an outage.",
                registry=registry,
            ),
            exposure_share=Gauge(
                "recsmith_exposure_share",
                "Share of the slots served over the fairness window per item group (primary "
                "category; the largest groups, the rest as '(other)'), from the decision log.",
                ("group",),
                registry=registry,
            ),
            exposure_gini=OptionalGauge(
                "recsmith_exposure_gini",
                "Gini of slots served per item over the catalogue in the fairness window (0: "
                "even exposure, near 1: a few items take every slot); no sample while the window "
                "holds no list.",
                registry=registry,
            ),
            narrowing=OptionalGauge(
                "recsmith_narrowing_share",
                "Share of units whose latest lists span fewer item groups than the lists before "
                "them (the filter-bubble signal; units with enough lists in the window); no "
                "sample while no unit has enough.",
                registry=registry,
            ),
            degraded=Gauge(
                "recsmith_degraded",
                "1 while a component runs on its fallback (online_state: Redis unreachable; "
                "store: reads fail, recommendations come from memory).",
                ("component",),
                registry=registry,
            ),
        )

    def child(self, metric: MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, found once per label values: ``labels`` converts and
        checks the values and takes the metric's lock on every call (~2.7 µs, three times a
        served list: the request's duration, the list's tier, its impressions; and once per
        stage and source of each pipeline call, ``observe_answer``). Only for
        metrics never cleared (``clear`` or ``remove`` would leave a kept child unexported, so
        not ``model_info`` or ``exposure_share``); their labels are small fixed vocabularies,
        so the map stays small. Two threads finding one child at once both get the metric's one
        child for those values."""
        key = (metric, *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def set_model(self, version: str | None) -> None:
        """Expose exactly one version series (or none when no model is loaded)."""
        self.model_info.clear()
        if version is not None:
            self.model_info.labels(version=version).set(1)

    def observe_answer(
        self, timings: dict[str, float], candidates: dict[str, int], batch_size: int = 1
    ) -> None:
        """One pipeline call: its stage durations (for the whole batch), served items per source
        and how many requests it answered. Stages and sources are the deployed pipelines' names:
        their children are found once (``child``): a ``labels`` per stage and source (8 stages and
        6 sources) cost 29.3 µs a call, ``child`` 14.2 µs (BENCHMARKS §81)."""
        self.batch_size.observe(batch_size)
        for stage, seconds in timings.items():
            self.child(self.stage_duration, stage).observe(seconds)
        for source, n in candidates.items():
            if n:
                self.child(self.candidates, source).inc(n)

    def observe_hold(self, seconds: float) -> None:
        """A coalesced flush was held ``seconds`` for company (``Gatherer``'s ``on_hold``)."""
        self.holds.inc()
        self.hold_seconds.inc(seconds)

    def set_exposure(self, shares: dict[str, float], gini: float, narrowing: float) -> None:
        """The fairness gauges (``recsmith.fairness.watch``): at most ``EXPOSURE_GROUPS``
        group series, the smaller groups summed as '(other)', so the label stays bounded. A NaN
        Gini or narrowing share (nothing to measure yet) leaves that gauge without a sample."""
        top = sorted(shares.items(), key=lambda kv: -kv[1])
        self.exposure_share.clear()
        for group, share in top[:EXPOSURE_GROUPS]:
            self.exposure_share.labels(group=group).set(share)
        if len(top) > EXPOSURE_GROUPS:
            self.exposure_share.labels(group="(other)").set(
                sum(s for _, s in top[EXPOSURE_GROUPS:])
            )
        self.exposure_gini.set(gini)
        self.narrowing.set(narrowing)

    def observe_request(self, scope: Scope, status: int, seconds: float) -> None:
        """One HTTP request's duration (``serving.edge`` times each), labelled by method, the
        route *template* it matched and its status. The router stores the matched route in
        ``scope["route"]``, read after the response, so the label is the template whatever ids
        were in the path (``UNMATCHED`` when no route matched)."""
        matched = scope.get("route")
        # path_format drops convertors: "/v1/items/{item_id:id}" -> "/v1/items/{item_id}"
        route = getattr(matched, "path_format", None) or getattr(matched, "path", UNMATCHED)
        method = scope.get("method", "GET")
        method = method if method in _METHODS else "other"
        self.child(self.request_duration, method, route, str(status)).observe(seconds)

    def count_ingest(self, accepted: int, duplicates: int, rejected: int) -> None:
        counts = {"accepted": accepted, "duplicate": duplicates, "rejected": rejected}
        for status, n in counts.items():
            if n:
                self.events_ingested.labels(status=status).inc(n)
