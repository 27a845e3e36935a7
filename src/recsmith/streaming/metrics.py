"""A consumer's Prometheus metrics, served on a port of its own (recsmith consume --metrics-port).

A consumer is a process apart from the API servers, so it cannot add to their ``/metrics``; like
them it keeps its own ``CollectorRegistry`` (never prometheus_client's global one), so tests can
run several consumers in one process. Throughput is a counter (events/s is
``rate(recsmith_stream_events_total{outcome="stored"}[1m])``), plus a gauge of the rate over the
last lag refresh for a glance without PromQL; lag is what the broker counts for the whole group.
"""

from __future__ import annotations

from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from recsmith.streaming.broker import Lag
from recsmith.streaming.ingest import BatchOutcome


@dataclass(frozen=True)
class StreamMetrics:
    registry: CollectorRegistry
    events: Counter
    items: Counter
    rejected: Counter
    acked: Counter
    store_failures: Counter
    broker_failures: Counter
    pending: Gauge
    unconsumed: Gauge
    events_per_second: Gauge

    @classmethod
    def create(cls) -> StreamMetrics:
        registry = CollectorRegistry(auto_describe=True)
        return cls(
            registry=registry,
            events=Counter(
                "recsmith_stream_events",
                "Events consumed from the stream, by outcome: stored (new) or duplicate (already "
                "stored: a redelivery, or a resend).",
                ("outcome",),
                registry=registry,
            ),
            items=Counter(
                "recsmith_stream_items",
                "Catalogue items upserted from the stream.",
                registry=registry,
            ),
            rejected=Counter(
                "recsmith_stream_rejected",
                "Messages refused (dead-lettered with their stream id).",
                registry=registry,
            ),
            acked=Counter(
                "recsmith_stream_acked",
                "Messages acknowledged to the broker, each after the store had it.",
                registry=registry,
            ),
            store_failures=Counter(
                "recsmith_stream_store_failures",
                "Batches the store could not take (released to the broker, retried).",
                registry=registry,
            ),
            broker_failures=Counter(
                "recsmith_stream_broker_failures",
                "Broker calls that failed (retried; a batch stored but not acknowledged is "
                "delivered again, a no-op).",
                registry=registry,
            ),
            pending=Gauge(
                "recsmith_stream_pending_messages",
                "Messages delivered to a consumer of the group and not acknowledged yet.",
                registry=registry,
            ),
            unconsumed=Gauge(
                "recsmith_stream_unconsumed_messages",
                "Messages in the stream not yet delivered to the group (NaN: unknown).",
                registry=registry,
            ),
            events_per_second=Gauge(
                "recsmith_stream_events_per_second",
                "Events stored per second by this consumer since the previous lag refresh.",
                registry=registry,
            ),
        )

    def count(self, outcome: BatchOutcome, acked: int) -> None:
        self.events.labels(outcome="stored").inc(outcome.events_stored)
        self.events.labels(outcome="duplicate").inc(outcome.events_duplicate)
        self.items.inc(outcome.items_stored)
        self.rejected.inc(outcome.rejected)
        self.acked.inc(acked)

    def show_lag(self, lag: Lag) -> None:
        self.pending.set(lag.pending)
        self.unconsumed.set(float("nan") if lag.unconsumed is None else lag.unconsumed)

    def serve(self, port: int, host: str = "127.0.0.1") -> WSGIServer:
        """``/metrics`` on ``host:port`` in a daemon thread, for Prometheus to scrape; the
        server, to shut down."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server
