"""A consumer's Prometheus metrics count what the test published (hand-counted), its lag gauges
show the backlog before and none after, and ``/metrics`` serves them on the consumer's port."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path

from recsmith.config import EventSettings
from recsmith.streaming.consumer import StreamConsumer
from recsmith.streaming.metrics import StreamMetrics
from recsmith.testing.backends import open_backend
from recsmith.testing.ports import free_port


def test_metrics_count_the_stream_and_its_lag(stream, tmp_path: Path) -> None:
    now = time.time()
    events = [
        {"event_id": f"e{n}", "user_id": "u1", "item_id": "i1", "event_type": "view",
         "timestamp": now}
        for n in range(30)
    ]  # fmt: skip
    messages = [("event", json.dumps(e).encode()) for e in events]
    messages += [("event", json.dumps(events[0]).encode())]  # a resend: a duplicate
    messages += [("item", b'{"item_id": "i1"}'), ("event", b"[]"), ("event", b"{")]
    stream.publish(messages)
    metrics = StreamMetrics.create()
    port = free_port()
    server = metrics.serve(port)
    with open_backend("sqlite", tmp_path) as (store, _):
        broker = stream.broker("c1", claim_idle_s=5)
        consumer = StreamConsumer(
            broker, store, EventSettings(), metrics=metrics, batch_size=8, wait_s=0.2
        )
        consumer.refresh_lag(force=True)

        def value(name: str, **labels: str) -> float | None:
            return metrics.registry.get_sample_value(name, labels)

        assert value("recsmith_stream_unconsumed_messages") == len(messages)
        assert value("recsmith_stream_pending_messages") == 0
        totals = consumer.run(threading.Event(), until_drained=True)
        broker.close()

    assert value("recsmith_stream_acked_total") == len(messages) == totals.acked
    assert value("recsmith_stream_events_total", outcome="stored") == 30
    assert value("recsmith_stream_events_total", outcome="duplicate") == 1
    assert value("recsmith_stream_items_total") == 1
    assert value("recsmith_stream_rejected_total") == 2
    assert value("recsmith_stream_unconsumed_messages") == 0
    assert value("recsmith_stream_pending_messages") == 0
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
            text = reply.read().decode()
    finally:
        server.shutdown()
    assert f"recsmith_stream_acked_total {float(len(messages))}" in text
