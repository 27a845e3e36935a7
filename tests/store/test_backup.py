"""`recsmith backup` / `restore` for the SQLite store: a backup taken while a real server ingests
holds every event acknowledged before it began (and nothing sent after it ended); restore
refuses to overwrite a store that holds data unless told to; PostgreSQL is pointed to pg_dump.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.events.schema import Item
from recsmith.events.validate import validate_events
from recsmith.store.sqlite import SQLiteStore

runner = CliRunner()
RECSMITH = (sys.executable, "-m", "recsmith")
BATCH = 20
MAX_BATCHES = 2_000  # bound on each writer; the test stops them long before
WRITERS = 2


def _events(prefix: str, n: int) -> list[dict[str, object]]:
    return [
        {
            "event_id": f"{prefix}-{j}",
            "user_id": f"u{j % 30}",
            "item_id": f"i{j % 40}",
            "event_type": "view",
            "timestamp": time.time(),
        }
        for j in range(n)
    ]


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    path = tmp_path / "source.sqlite"
    store = SQLiteStore(path)
    store.append(validate_events(_events("seed", 500), EventSettings())[0])
    store.upsert_items([Item(item_id="i1", categories=["shoes"]), Item(item_id="i2")])
    store.close()
    return path


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr


def test_a_restored_backup_holds_what_the_store_held(filled: Path, tmp_path: Path) -> None:
    code, err = _cli("backup", "--store", f"sqlite:///{filled}", "--out", str(tmp_path / "b"))
    assert code == 0, err
    code, err = _cli("restore", str(tmp_path / "b"), "--store", f"sqlite:///{tmp_path / 'r'}")
    assert code == 0, err
    source, restored = SQLiteStore(filled), SQLiteStore(tmp_path / "r")
    try:
        frames = [pd.concat(list(s.scan()), ignore_index=True) for s in (source, restored)]
        pd.testing.assert_frame_equal(
            *(f.sort_values("event_id", ignore_index=True) for f in frames)
        )
        assert restored.items() == source.items() and len(restored.items()) == 2
    finally:
        source.close()
        restored.close()


def test_restore_refuses_a_store_that_holds_data_without_force(
    filled: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "b"
    assert _cli("backup", "--store", f"sqlite:///{filled}", "--out", str(backup))[0] == 0
    live = tmp_path / "live.sqlite"
    store = SQLiteStore(live)
    store.upsert_items([Item(item_id="only-here")])
    store.close()
    code, err = _cli("restore", str(backup), "--store", f"sqlite:///{live}")
    assert code == 2 and "--force" in err and "1 items" in err, err
    store = SQLiteStore(live)
    assert [i.item_id for i in store.items()] == ["only-here"]  # untouched
    store.close()
    code, err = _cli("restore", str(backup), "--store", f"sqlite:///{live}", "--force")
    assert code == 0, err
    store = SQLiteStore(live)
    assert store.count_events() == 500 and store.get_item("only-here") is None
    store.close()


@pytest.mark.parametrize("url", ["postgresql://127.0.0.1/test", "postgres://h/db"])
@pytest.mark.parametrize("command", ["backup", "restore"])
def test_a_postgresql_store_is_pointed_to_pg_dump(command: str, url: str, tmp_path: Path) -> None:
    target = ["--out", str(tmp_path / "b")] if command == "backup" else [str(tmp_path)]
    code, err = _cli(command, *target, "--store", url)
    assert code == 2 and "pg_dump" in err and "pg_restore" in err, err
    assert not (tmp_path / "b").exists()


def test_what_is_not_a_store_is_refused_by_name(filled: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database")
    code, err = _cli(
        "restore", str(tmp_path / "notes.txt"), "--store", f"sqlite:///{tmp_path / 'r'}"
    )
    assert code == 2 and "is not a SQLite database" in err
    assert not (tmp_path / "r").exists()
    code, err = _cli(
        "backup", "--store", f"sqlite:///{tmp_path / 'nope'}", "--out", str(tmp_path / "b")
    )
    assert code == 2 and "no SQLite store" in err and not (tmp_path / "nope").exists()
    code, err = _cli("backup", "--store", f"sqlite:///{filled}", "--out", str(filled))
    assert code == 2 and "is the store itself" in err


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Writer(threading.Thread):
    """Posts batches until stopped; keeps (sent_at, acked_at, ids) of each batch answered 200."""

    def __init__(self, base: str, name: str, stop: threading.Event) -> None:
        super().__init__()
        self.base, self.prefix, self.stop = base, name, stop
        self.acked: list[tuple[float, float, list[str]]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30) as http:
            for n in range(MAX_BATCHES):
                if self.stop.is_set():
                    return
                batch = _events(f"{self.prefix}-{n}", BATCH)
                sent = time.monotonic()
                try:
                    r = http.post("/v1/events", json=batch)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                if r.status_code == 200:
                    self.acked.append((sent, time.monotonic(), [str(e["event_id"]) for e in batch]))
                else:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")


@pytest.mark.slow
def test_a_backup_under_write_load_holds_every_event_acknowledged_before_it(
    filled: Path, tmp_path: Path
) -> None:
    url, port = f"sqlite:///{filled}", _port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*RECSMITH, "serve", "--store", url, "--port", str(port), "--allow-no-model"],
            env={**os.environ, "RECSMITH_SERVING__REQUIRE_KEYS": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    stop = threading.Event()
    writers = [_Writer(base, f"w{n}", stop) for n in range(WRITERS)]
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        for w in writers:
            w.start()
        while sum(len(w.acked) for w in writers) < 20:
            assert time.monotonic() < deadline and all(w.is_alive() for w in writers)
            time.sleep(0.05)
        began = time.monotonic()  # in-process: the copy starts within a millisecond of this
        code, err = _cli("backup", "--store", url, "--out", str(tmp_path / "b.sqlite"))
        ended = time.monotonic()
        assert code == 0, err
        time.sleep(1.0)  # writes go on after the backup too
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=60)
        server.terminate()
        server.wait(timeout=30)
    batches = [b for w in writers for b in w.acked]
    assert not [e for w in writers for e in w.errors]
    before = {i for _, acked, ids in batches if acked < began for i in ids}
    overlapping = [ids for sent, acked, ids in batches if sent <= ended and acked >= began]
    after = {i for sent, _, ids in batches if sent > ended for i in ids}
    assert before and overlapping and after  # writes before, in flight during, and after
    restored = tmp_path / "restored.sqlite"
    code, err = _cli("restore", str(tmp_path / "b.sqlite"), "--store", f"sqlite:///{restored}")
    assert code == 0, err
    store = SQLiteStore(restored)
    try:
        held = set(store.events_by_id(sorted(before | after))["event_id"])
        assert before <= held, f"{len(before - held)} acknowledged events missing"
        assert not held & after  # sent after the backup ended: cannot be in it
        sent_before_end = BATCH * sum(1 for sent, _, _ in batches if sent <= ended)
        assert 500 + len(before) <= store.count_events() <= 500 + sent_before_end
    finally:
        store.close()
