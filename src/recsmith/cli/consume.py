"""``recsmith consume``: events and catalogue updates from a Redis Stream or NATS JetStream into the
store (``recsmith.streaming``), acknowledged only once stored.

Run several with the same group (``--group``, ``--durable``) to share a stream; SIGTERM or Ctrl-C
stops one after its current batch. With ``serving.state_url`` set, each stored event also reaches
the API servers' online state (recent items), as an event sent over HTTP does.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from recsmith.cli._common import (
    StoreOption,
    errors_as_exit,
    fail,
    print_json,
    resolve_store_url,
    state,
    stderr,
)
from recsmith.config import Settings
from recsmith.decisions.attribution import Attributor
from recsmith.errors import ValidationError
from recsmith.evaluation.report import redact
from recsmith.store.ingest import OnStored
from recsmith.store.open import open_store
from recsmith.streaming.broker import Broker
from recsmith.streaming.consumer import ConsumerTotals, StreamConsumer
from recsmith.streaming.metrics import StreamMetrics

if TYPE_CHECKING:
    from recsmith.serving.online_state import OnlineState

#: Stop after the batch in hand (it is acknowledged once stored, as always).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _broker(
    redis_url: str | None,
    nats_url: str | None,
    stream: str,
    group: str | None,
    durable: str | None,
    consumer: str | None,
    claim_idle_s: float,
) -> Broker:
    """The adapter the options name, connected; a usage error when they do not name one whole,
    a failure naming the broker when it cannot be reached."""
    if (redis_url is None) == (nats_url is None):
        raise ValidationError("--redis-stream/--nats", "give exactly one broker")
    if redis_url is not None:
        if durable is not None:
            raise ValidationError("--durable", "is for --nats; a Redis Stream takes --group")
        if group is None:
            raise ValidationError("--group", "required with --redis-stream (the consumer group)")
        from recsmith.streaming.redis_streams import RedisStreamBroker

        name = consumer or f"{socket.gethostname()}-{os.getpid()}"
        with _unreachable(redact(redis_url), RedisStreamBroker.errors):
            return RedisStreamBroker(redis_url, stream, group, name, claim_idle_s=claim_idle_s)
    if group is not None or consumer is not None:
        raise ValidationError("--group/--consumer", "are for --redis-stream; NATS takes --durable")
    if durable is None:
        raise ValidationError("--durable", "required with --nats (the durable consumer's name)")
    try:
        from recsmith.streaming.nats_jetstream import JetStreamBroker
    except ImportError:
        raise ValidationError(
            "--nats", "needs the nats-py package: pip install 'recsmith[streams]'"
        ) from None
    with _unreachable(redact(nats_url or ""), JetStreamBroker.errors):
        return JetStreamBroker(nats_url or "", stream, durable, claim_idle_s=claim_idle_s)


@contextmanager
def _unreachable(where: str, errors: tuple[type[Exception], ...]) -> Iterator[None]:
    """The broker client's errors as one line and exit 3 (unacknowledged messages wait)."""
    try:
        yield
    except errors as exc:
        raise fail(f"broker {where}: {exc}", 3) from None


def run_consumer(
    broker: Broker,
    store_url: str,
    settings: Settings,
    *,
    batch: int,
    metrics_port: int | None,
    metrics_host: str,
    until_drained: bool,
) -> ConsumerTotals:
    """Consume until stopped (SIGTERM, SIGINT) or, with ``until_drained``, until nothing is
    left for the group."""
    with ExitStack() as closing:  # each opened thing closed, whatever fails after it
        closing.callback(broker.close)
        store = open_store(store_url, settings.store)
        closing.callback(store.close)
        online = None
        if settings.serving.state_url is not None:
            from recsmith.serving.online_state import open_state

            online = open_state(settings.serving.state_url)
            closing.callback(online.close)
        metrics = StreamMetrics.create()
        if metrics_port is not None:
            closing.callback(metrics.serve(metrics_port, metrics_host).shutdown)
        consumer = StreamConsumer(
            broker,
            store,
            settings.events,
            metrics=metrics,
            batch_size=batch,
            attributor=(
                Attributor(store, settings.decisions) if settings.decisions.enabled else None
            ),
            on_stored=None if online is None else _push_to(online),
            state=online,
        )
        stop = threading.Event()
        before = {s: signal.signal(s, lambda *_: stop.set()) for s in STOP_SIGNALS}
        try:
            return consumer.run(stop, until_drained=until_drained)
        finally:  # the caller's own handlers again (a test runner's Ctrl-C)
            for signum, handler in before.items():
                signal.signal(signum, handler)


def _push_to(online: OnlineState) -> OnStored:
    """What the API servers do with stored events: their actors' recent items, for the next
    answer (``serving.group_commit``)."""
    return online.push


def consume_command(
    ctx: typer.Context,
    stream: Annotated[
        str,
        typer.Option(help="The stream's name (Redis key, JetStream stream).", show_default=False),
    ],
    redis_stream: Annotated[
        str | None,
        typer.Option(
            "--redis-stream", metavar="URL", help="Redis URL (redis://host:6379/0): Redis Streams."
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Redis consumer group, created at the stream's start when absent."),
    ] = None,
    consumer: Annotated[
        str | None,
        typer.Option(help="This consumer's name in the Redis group (default: host-pid)."),
    ] = None,
    nats: Annotated[
        str | None,
        typer.Option("--nats", metavar="URL", help="NATS URL (nats://host:4222): JetStream."),
    ] = None,
    durable: Annotated[
        str | None,
        typer.Option(help="JetStream durable consumer, created on the stream when absent."),
    ] = None,
    store: StoreOption = None,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Messages per fetch and store commit.")
    ] = 500,
    claim_idle: Annotated[
        float,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="A message delivered but not acknowledged this long (its consumer died) goes "
            "to another consumer of the group.",
        ),
    ] = 30.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus /metrics on this port."),
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address for --metrics-port.")] = "127.0.0.1",
    until_drained: Annotated[
        bool,
        typer.Option(
            "--until-drained",
            help="Exit once the group has nothing left: none undelivered, none unacknowledged.",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="End with one JSON line of counts.")
    ] = False,
) -> None:
    """Consume events (and catalogue items) from a stream into the store: validated as over
    HTTP, acknowledged after the store has them, refused records to the dead letters with their
    stream id."""
    cli = state(ctx)
    with errors_as_exit():
        broker = _broker(redis_stream, nats, stream, group, durable, consumer, claim_idle)
    store_url = resolve_store_url(store, cli.settings)
    if not cli.quiet:
        stderr.print(f"consuming {broker.label} into {redact(store_url)}", highlight=False)
    with errors_as_exit(), _unreachable(broker.label, broker.errors):
        totals = run_consumer(
            broker,
            store_url,
            cli.settings,
            batch=batch,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            until_drained=until_drained,
        )
    if not cli.quiet:
        stderr.print(
            f"{totals.acked:,} messages acknowledged: {totals.events_stored:,} events stored, "
            f"{totals.events_duplicate:,} duplicates, {totals.items_stored:,} items, "
            f"{totals.rejected:,} rejected (dead letters)",
            highlight=False,
        )
    if json_out:
        print_json(totals.to_json())
