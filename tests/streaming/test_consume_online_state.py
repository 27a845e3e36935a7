"""With ``serving.state_url`` set, streamed events reach the API servers' online state (each
visitor's recent items in Redis) as HTTP events do, so the servers' next answers see them; a new
RedisState, as another server process would open, reads them back."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from recsmith.cli.consume import run_consumer
from recsmith.config import Settings
from recsmith.serving.online_state import RedisState
from recsmith.testing.backends import redis_url_or_skip
from recsmith.testing.streams import ScratchStream


@pytest.mark.redis
def test_streamed_events_reach_the_shared_recent_items(tmp_path: Path) -> None:
    url = redis_url_or_skip()
    user = f"u-{uuid.uuid4().hex}"  # the test database is shared: a visitor of its own
    now = time.time()
    views = [("i1", now - 30), ("i2", now - 20), ("i3", now - 10)]  # oldest first
    stream = ScratchStream("redis", url)
    try:
        stream.publish(
            [
                ("event", json.dumps({"event_id": f"{user}-{item}", "user_id": user,
                                      "item_id": item, "event_type": "view",
                                      "timestamp": ts}).encode())
                for item, ts in reversed(views)  # sent newest first: the time orders them
            ]
        )  # fmt: skip
        settings = Settings(serving={"state_url": url})
        broker = stream.broker("c1", claim_idle_s=5)
        totals = run_consumer(
            broker,
            f"sqlite:///{tmp_path / 's.sqlite'}",
            settings,
            batch=10,
            metrics_port=None,
            metrics_host="127.0.0.1",
            until_drained=True,
        )
        assert totals.events_stored == 3
        server_side = RedisState(url)
        assert server_side.recent(user, 5) == ["i3", "i2", "i1"]  # newest first
        server_side.forget(user)
        server_side.close()
    finally:
        stream.delete()
