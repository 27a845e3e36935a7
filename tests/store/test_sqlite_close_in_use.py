"""Closing the SQLite store while another thread is inside a statement does not crash.

A server's shutdown closes its store while a watcher's read may still run in the thread pool
(cancelling the task does not stop the thread). Closing a sqlite3 connection under a running
statement broke that read ("Cannot operate on a closed database" here) and, in CI, killed the
process with a segfault; it runs in a subprocess so that a crash fails this test, not the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    from recsmith.store.sqlite import SQLiteStore

    store = SQLiteStore(sys.argv[1])
    store.items()  # this thread's connection exists too
    running, result = threading.Event(), []

    def long_read():
        conn = store._conn()  # a read that takes a while: 2 million rows, fetched one by one
        query = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) "
            "SELECT x FROM c"
        )
        rows = conn.execute(query)
        running.set()
        result.append(sum(1 for _ in rows))

    reader = threading.Thread(target=long_read)
    reader.start()
    running.wait()
    time.sleep(0.05)
    store.close()
    reader.join()
    print("counted", result[0])
    """
)


def test_a_read_in_another_thread_survives_close(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "s.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split() == ["counted", "2000000"]
