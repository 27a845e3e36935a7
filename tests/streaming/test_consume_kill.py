"""``recsmith consume`` killed with kill -9 while it holds unacknowledged messages loses nothing:
a second consumer of the group claims them after the timeout, and in the end every published
event is stored exactly once, every message is acknowledged, and each bad record is one dead
letter naming its message. Two real processes on a real broker and a real SQLite store; the
oracle is the list of messages the test published.

The first consumer is caught holding a batch deterministically: the test takes SQLite's write
lock, so the consumer's next commit waits, its batch fetched and unacknowledged, and it is
killed there.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.store.sqlite import SQLiteStore

N_EVENTS = 600
NOW = time.time()


def _messages() -> tuple[list[tuple[str, bytes]], set[str], list[int]]:
    """The published messages, the ids of the good events, and the positions of the bad."""
    messages: list[tuple[str, bytes]] = [
        ("item", json.dumps({"item_id": f"i{n}", "categories": ["c"]}).encode()) for n in range(5)
    ]
    good: set[str] = set()
    bad: list[int] = []
    for n in range(N_EVENTS):
        if n % 50 == 7:  # 12 bad records among the events: an unknown type, then broken JSON
            bad.append(len(messages))
            unknown_type = json.dumps({"item_id": "i1", "event_type": "x"}).encode()
            messages.append(("event", b"{oops" if n % 100 == 7 else unknown_type))
            continue
        event_id = f"e{n}"
        good.add(event_id)
        record = {
            "event_id": event_id,
            "user_id": f"u{n % 17}",
            "item_id": f"i{n % 5}",
            "event_type": "view",
            "timestamp": NOW - n,
        }
        messages.append(("event", json.dumps(record).encode()))
    return messages, good, bad


def _command(stream, db: Path) -> list[str]:  # type: ignore[no-untyped-def]
    """``recsmith`` arguments of a consumer of the test's stream into the test's store."""
    options = ["--store", f"sqlite:///{db}", "--batch", "40", "--claim-idle", "1"]
    return ["-q", "consume", *stream.cli_args(), *options]


def _wait(condition, what: str, timeout_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.timeout(180)  # a second consumer that never claims would wait forever
def test_a_consumer_killed_holding_messages_loses_none(stream, tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite"
    SQLiteStore(db).close()  # schema first, so the test can count while consumers write
    messages, good, bad = _messages()
    ids = stream.publish(messages)
    # reads the group's lag only (it creates the group, JetStream's with the consumers' timeout)
    watch = stream.broker("watcher", claim_idle_s=1)

    def stored() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    first = subprocess.Popen(
        [sys.executable, "-m", "recsmith", *_command(stream, db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(lambda: stored() > 0 or first.poll() is not None, "the first consumer's commit")
        assert first.poll() is None, first.communicate()[1]
        lock = sqlite3.connect(db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # its next commit waits on this
        _wait(lambda: watch.lag().pending > 0, "a batch held by the first consumer")
        time.sleep(0.3)
        held = watch.lag().pending
        assert held > 0
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        lock.execute("ROLLBACK")
        lock.close()
    finally:
        if first.poll() is None:
            first.kill()
    partial = stored()
    assert partial < len(good)  # it was killed midway: the rest is the second one's to do
    assert watch.lag().pending == held  # still unacknowledged, held by a dead consumer

    # the second consumer runs in this process (a process start costs seconds on a busy CI)
    second = CliRunner().invoke(app, [*_command(stream, db), "--until-drained", "--json"])
    assert second.exit_code == 0, second.output
    totals = json.loads(second.stdout.strip().splitlines()[-1])

    lag = watch.lag()
    assert (lag.pending, lag.unconsumed) == (0, 0)  # every message acknowledged
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT event_id FROM events").fetchall()
        letters = conn.execute("SELECT source, record_index FROM dead_letters").fetchall()
        items = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    event_ids = [r[0] for r in rows]
    assert len(event_ids) == len(set(event_ids))  # no event twice
    assert set(event_ids) == good  # each published event stored
    assert sorted(letters) == sorted((stream.source(ids[p]), 0) for p in bad)
    assert items == 5
    # acknowledged = stored: what the second consumer acknowledged is what it stored (or
    # dead-lettered), and with the first one's commits that is every message
    assert totals["acked"] == totals["messages"] > 0
    assert partial + totals["events_stored"] == len(good)
    watch.close()
