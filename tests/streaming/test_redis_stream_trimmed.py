"""Redis only: entries pending with a consumer but trimmed from the stream since (``XTRIM``,
``MAXLEN``) are acknowledged when that consumer reads its pending list again, not handed over as
empty messages nor left pending forever (a group that never drains)."""

from __future__ import annotations

import pytest
import redis

from recsmith.testing.backends import redis_url_or_skip
from recsmith.testing.streams import ScratchStream


@pytest.mark.redis
def test_pending_entries_trimmed_away_are_acknowledged_not_delivered() -> None:
    stream = ScratchStream("redis", redis_url_or_skip())
    try:
        stream.publish([("event", b"{}")] * 3)
        first = stream.broker("c1", claim_idle_s=60)
        assert len(first.fetch(10, 0.1)) == 3
        assert first.lag().pending == 3
        redis.Redis.from_url(stream.url).xtrim(stream.name, maxlen=0)
        restarted = stream.broker("c1", claim_idle_s=60)  # the same consumer, started again
        assert restarted.fetch(10, 0.1) == []
        assert restarted.lag().pending == 0
        first.close()
        restarted.close()
    finally:
        stream.delete()
