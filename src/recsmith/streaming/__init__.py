"""Streaming ingest: events and catalogue updates read from a broker's stream (recsmith consume).

The consumer (``consumer``) is broker-neutral: it reads a batch, validates and stores it as
``POST /v1/events`` and ``/v1/items`` would (``ingest``), and only then acknowledges it to the
broker, so a consumer that dies loses nothing: its unacknowledged messages are delivered again,
and storing them again is a no-op (``event_id``). A broker is one adapter (``broker.Broker``):
Redis Streams with a consumer group (``redis_streams``) and NATS JetStream with a durable pull
consumer (``nats_jetstream``).
"""
