"""``DecisionLog``: bounded, never blocking, losing nothing to a store outage it can wait out."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recsmith.config import DecisionSettings
from recsmith.decisions.log import DecisionLog
from recsmith.decisions.record import Decision, decision
from recsmith.store.base import EventStore
from recsmith.store.sqlite import SQLiteStore


def listed(n: int) -> Decision:
    return decision(
        f"r{n:04d}",
        unit=f"u{n}",
        unit_kind="user",
        route="recommendations",
        release="r1",
        item_ids=["a", "b"],
        scores=[2.0, 1.0],
        sources=[("als",), ("popular",)],
    )


def stored_ids(store: EventStore) -> list[str]:
    return sorted(store.scan_decisions()["recommendation_id"].unique())


def test_a_full_buffer_drops_the_oldest_and_counts_them(store: EventStore) -> None:
    drops: list[int] = []
    log = DecisionLog(store, DecisionSettings(buffer_size=3), on_drop=drops.append)
    for n in range(5):
        log.record(listed(n))
    assert log.dropped == 2 and sum(drops) == 2
    assert log.pending("r0000") is None and log.pending("r0004") is not None
    assert log.flush() == 3
    assert stored_ids(store) == ["r0002", "r0003", "r0004"]
    assert log.status().buffered == 0 and log.status().written == 3


def test_the_writer_stores_within_its_interval_and_close_flushes_the_rest(
    store: EventStore,
) -> None:
    log = DecisionLog(store, DecisionSettings(flush_interval_s=0.2))
    log.start()
    try:
        log.record(listed(1))
        deadline = time.monotonic() + 5
        while not stored_ids(store) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stored_ids(store) == ["r0001"]
        log.record(listed(2))
    finally:
        log.close()
    assert stored_ids(store) == ["r0001", "r0002"]


def test_a_disabled_log_records_nothing(store: EventStore) -> None:
    log = DecisionLog(store, DecisionSettings(enabled=False))
    log.start()
    log.record(listed(1))
    log.close()
    assert stored_ids(store) == [] and log.status().buffered == 0


def test_a_store_outage_keeps_the_batch_for_the_next_flush(tmp_path: Path) -> None:
    """A real SQLITE_FULL (the connection's page cap), then the disk has room again."""
    store = SQLiteStore(tmp_path / "full.sqlite")
    try:
        log = DecisionLog(store, DecisionSettings())
        for n in range(2000):
            log.record(listed(n))
        conn = store._conn()  # the connection of this thread, the one flush uses here
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        assert log.flush() == 0
        assert log.status().buffered == 2000 and log.dropped == 0
        assert log.last_error is not None and "full" in log.last_error
        assert log.pending("r0000") is not None  # still findable for attribution
        conn.execute("PRAGMA max_page_count = 1073741823")
        assert log.flush() == 2000
        assert len(stored_ids(store)) == 2000 and log.last_error is None
    finally:
        store.close()


def test_the_writer_applies_retention(store: EventStore) -> None:
    old = decision(
        "r-old",
        unit="u1",
        unit_kind="user",
        route="recommendations",
        release="r1",
        item_ids=["a"],
        scores=[1.0],
        sources=[("als",)],
        served_at=datetime.now(UTC) - timedelta(days=3),
    )
    store.append_decisions([old])
    log = DecisionLog(store, DecisionSettings(retain_days=2, flush_interval_s=0.1))
    log.start()
    try:
        log.record(listed(1))
        deadline = time.monotonic() + 5
        while stored_ids(store) != ["r0001"] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        log.close()
    assert stored_ids(store) == ["r0001"]


def test_request_counts_are_stored_with_the_flush_and_kept_through_an_outage(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "counts.sqlite")
    try:
        log = DecisionLog(store, DecisionSettings())
        at = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC).timestamp()
        for n in range(7):
            log.requests.add("exp", "treatment", failed=n < 3, now_s=at)
        for minute in range(1, 501):  # enough rows to need new pages
            log.requests.add("exp", "control", failed=False, now_s=at + 60 * minute)
        conn = store._conn()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # a real SQLITE_FULL
        log.flush()
        assert log.last_error is not None and "full" in log.last_error
        log.requests.add("exp", "treatment", failed=True, now_s=at)  # meanwhile
        conn.execute("PRAGMA max_page_count = 1073741823")
        log.flush()
        counts = store.request_counts("exp").values.tolist()
        assert counts == [["control", 500, 0], ["treatment", 8, 4]]
        log.flush()  # nothing new: nothing added twice
        assert store.request_counts("exp").values.tolist() == counts
    finally:
        store.close()


def test_counting_takes_5xx_and_store_outages_as_errors_and_ignores_4xx(store: EventStore) -> None:
    import asyncio

    from fastapi import HTTPException

    from recsmith.decisions.requests import counting
    from recsmith.errors import StoreUnavailable

    log = DecisionLog(store, DecisionSettings())
    raised: list[BaseException] = [
        StoreUnavailable("the store is down", "disk full"),
        HTTPException(503, "unavailable"),
        RuntimeError("a bug"),
        HTTPException(422, "bad input"),
        HTTPException(409, "needs a pipeline"),
        asyncio.CancelledError(),  # the client went away: neither a request nor an error
    ]
    for exc in raised:
        try:
            with counting(log, "exp", "treatment"):
                raise exc
        except type(exc):
            pass
    with counting(log, "exp", "treatment"):
        pass  # answered
    with counting(log, None, None):
        pass  # outside any experiment: not counted
    log.flush()
    assert store.request_counts("exp").values.tolist() == [["treatment", 4, 3]]


def test_one_infinite_score_does_not_cost_its_batch(store: EventStore) -> None:
    """A batch is one transaction: were one list refused for a score, the writer would drop all
    fifty (it does not retry a batch that failed for a reason other than an outage)."""
    log = DecisionLog(store, DecisionSettings())
    lists = [listed(n) for n in range(50)]
    lists[17] = replace(lists[17], scores=(1.0, float("-inf")))
    for d in lists:
        log.record(d)
    assert log.flush() == 50
    assert log.dropped == 0 and log.last_error is None
    assert stored_ids(store) == [f"r{n:04d}" for n in range(50)]
    got = store.get_decision("r0017")
    assert got is not None and got.scores == (1.0, float("-inf"))
