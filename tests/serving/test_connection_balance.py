"""The connection balance's rule, on the shared array the supervisor makes (a real
``multiprocessing`` RawArray), against counts worked out by hand."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from prometheus_client import generate_latest

from recsmith.serving import connection_balance
from recsmith.serving.connection_balance import NOT_SERVING, ConnectionBalance
from recsmith.serving.metrics import Metrics


def _counts(*values: int) -> multiprocessing.Array:  # type: ignore[valid-type]
    return multiprocessing.get_context("spawn").RawArray("i", list(values))


def test_only_a_worker_two_or_more_ahead_of_the_fewest_closes() -> None:
    counts = _counts(18, 14)
    assert ConnectionBalance(counts, 0).should_close(18)  # 18 - 14 = 4
    assert not ConnectionBalance(counts, 1).should_close(14)  # the lighter one never
    assert not ConnectionBalance(_counts(17, 16), 0).should_close(17)  # one ahead: even enough
    assert ConnectionBalance(_counts(10, 10, 8), 0).should_close(10)  # 10 - 8 = 2, of three


def test_a_worker_not_serving_yet_is_not_counted() -> None:
    # the other worker still loads its model: the kernel gives it no connection, so closing
    # one here would only bring the client back to this worker
    assert not ConnectionBalance(_counts(NOT_SERVING, 5), 1).should_close(5)
    assert ConnectionBalance(_counts(3, NOT_SERVING, 0), 0).should_close(3)


def test_one_close_per_cooldown_and_each_counted() -> None:
    balance = ConnectionBalance(_counts(20, 12), 0, cooldown_s=0.2)
    assert balance.should_close(20)
    # the client of that close is reconnecting: 19 + 12 open, a gap that is not one
    assert not balance.should_close(19)
    time.sleep(0.25)
    assert balance.should_close(19)
    assert balance.closed == 2


def test_record_writes_this_workers_slot_only() -> None:
    counts = _counts(NOT_SERVING, 7)
    ConnectionBalance(counts, 0).record(9)
    assert list(counts) == [9, 7]


def test_metrics_count_this_workers_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    def scraped() -> str:
        return generate_latest(Metrics.create().registry).decode()

    assert "recsmith_connections_closed_to_balance_total 0.0" in scraped()  # one worker
    balance = ConnectionBalance(_counts(20, 12), 0, cooldown_s=0.0)
    monkeypatch.setattr(connection_balance, "_balance", balance)
    assert balance.should_close(20) and balance.should_close(19)
    assert not balance.should_close(13)
    assert "recsmith_connections_closed_to_balance_total 2.0" in scraped()
