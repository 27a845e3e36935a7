"""Each streaming test runs on each real broker (Redis Streams, NATS JetStream), on a scratch stream
of its own (``recsmith.testing.streams``), deleted afterwards.

Without a broker the tests skip, unless ``RECSMITH_REQUIRE_REDIS=1`` / ``RECSMITH_REQUIRE_NATS=1``
(CI), where a missing broker fails them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from recsmith.testing.backends import nats_url_or_skip, redis_url_or_skip
from recsmith.testing.streams import ScratchStream

BROKERS = ("redis", "nats")


@pytest.fixture(params=[pytest.param(b, marks=getattr(pytest.mark, b)) for b in BROKERS])
def stream(request: pytest.FixtureRequest) -> Iterator[ScratchStream]:
    """A fresh stream on each broker in turn (deleted afterwards)."""
    url = redis_url_or_skip() if request.param == "redis" else nats_url_or_skip()
    made = ScratchStream(request.param, url)
    try:
        yield made
    finally:
        made.delete()
