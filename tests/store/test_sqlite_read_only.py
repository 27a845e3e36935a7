"""A SQLite store that cannot be written (a production copy, a read-only mount) can still be read;
a write on it, or a schema older than this version, fails with a line naming the file.

Root passes every permission check, so there the file's mode alone would not make it read-only:
the tests then ask for it with ``?mode=ro`` (the chmod is still done, and checked only where it
binds), which opens the file with SQLite's own read-only URI.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith import __version__
from recsmith.cli.app import app
from recsmith.decisions.record import decision
from recsmith.errors import StoreReadOnly, StoreUnavailable
from recsmith.store.base import ApiKey
from recsmith.store.open import open_store
from recsmith.store.url_scheme import sqlite_file
from recsmith.testing.contracts import event, ingest

ROOT = os.geteuid() == 0
runner = CliRunner()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def locked_store(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A store with 3 events and a key, checkpointed, then chmod 0444 in a 0555 directory; the
    URL that opens it read-only for this user (the plain one, or ``?mode=ro`` as root)."""
    folder = tmp_path / "copy"
    folder.mkdir()
    path = folder / "store.sqlite"
    store = open_store(f"sqlite:///{path}")
    ingest(store, [event("i1", "e1"), event("i2", "e2", h=1), event("i1", "e3", user="u2")])
    key = ApiKey("k1", "ops", ("read",), datetime(2026, 1, 1, tzinfo=UTC))
    store.add_api_key(key, "h" * 64)
    store.close()
    with sqlite3.connect(path) as conn:  # fold the WAL into the file: a copy as cp makes it
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for extra in ("-wal", "-shm", "-writer"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    path.chmod(0o444)
    folder.chmod(0o555)
    yield path, f"sqlite:///{path}" + ("?mode=ro" if ROOT else "")
    folder.chmod(0o755)
    path.chmod(0o644)


def test_a_read_only_store_is_read_and_left_as_it_was(locked_store: tuple[Path, str]) -> None:
    path, url = locked_store
    before = _digest(path)
    store = open_store(url)
    try:
        assert store.count_events() == 3
        assert [k.key_id for k in store.api_keys()] == ["k1"]
        assert store.user_items("u1") == ["i1", "i2"]
    finally:
        store.close()
    assert _digest(path) == before


def test_a_write_on_a_read_only_store_names_the_file(
    locked_store: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The write is refused, and that is no outage: nothing logs the store as unavailable (or
    back afterwards), and it is not counted as failing, so reads and readiness are unaffected."""
    path, url = locked_store
    before = _digest(path)
    store = open_store(url)
    try:
        with caplog.at_level(logging.WARNING, logger="recsmith.store"):
            with pytest.raises(StoreReadOnly) as caught:
                store.revoke_api_key("k1", datetime(2026, 2, 1, tzinfo=UTC))
            assert store.outage.failing == frozenset()
            assert store.count_events() == 3
    finally:
        store.close()
    assert f"{path} is open read-only" in str(caught.value)
    assert "this command writes to it" in str(caught.value)
    assert isinstance(caught.value, StoreUnavailable)  # still exit 3 / 503 where it is caught
    assert [r.getMessage() for r in caplog.records] == []
    assert _digest(path) == before


@pytest.mark.skipif(ROOT, reason="root writes a 0444 file: the plain URL opens it writable")
def test_a_file_that_cannot_be_written_opens_read_only_unasked(
    locked_store: tuple[Path, str],
) -> None:
    path, _ = locked_store
    assert not os.access(path, os.W_OK) and stat.S_IMODE(path.stat().st_mode) == 0o444
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.count_events() == 3
    finally:
        store.close()


def test_an_older_schema_is_refused_read_only_by_file_and_version(tmp_path: Path) -> None:
    """Nothing is created read-only, so a store from before the decision log would read as one
    without it: it is refused with what it lacks instead, and left unchanged."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE events (event_id TEXT PRIMARY KEY, user_id TEXT, session_id TEXT, "
            "item_id TEXT NOT NULL, event_type TEXT NOT NULL, value REAL, ts INTEGER NOT NULL, "
            "context TEXT, received_at INTEGER NOT NULL)"
        )
    before = _digest(path)
    with pytest.raises(StoreUnavailable) as caught:
        open_store(f"sqlite:///{path}?mode=ro")
    message = str(caught.value)
    assert str(path) in message and f"recsmith {__version__}" in message
    assert "table decisions" in message and "column events.recommendation_id" in message
    assert _digest(path) == before
    open_store(f"sqlite:///{path}").close()  # writable, the same file is upgraded ...
    open_store(f"sqlite:///{path}?mode=ro").close()  # ... and then opens read-only


#: ``decision_items`` as the version before one-row lists wrote it (``store.packed_items``)
OLD_ITEMS_DDL = (
    "CREATE TABLE decision_items (recommendation_id TEXT NOT NULL, position INTEGER NOT NULL, "
    "item_id TEXT NOT NULL, score REAL NOT NULL, sources TEXT NOT NULL, propensity REAL NOT NULL, "
    "unit TEXT, served_at INTEGER NOT NULL, PRIMARY KEY (recommendation_id, position))"
)


def test_a_store_with_the_old_item_table_is_refused_read_only(tmp_path: Path) -> None:
    """Every column this version reads is there, but an older version (run again after an
    upgrade) wrote a list's items one row each into ``decision_items``: read as it is, the list
    would have no items. Read-only it is refused by that table's name; a writable open packs the
    rows into the list, which then reads whole, read-only too."""
    path = tmp_path / "mixed.sqlite"
    served = datetime(2026, 3, 1, tzinfo=UTC)
    store = open_store(f"sqlite:///{path}")
    head = decision(
        "r1",
        unit="u1",
        unit_kind="user",
        route="recommendations",
        release="rel-1",
        item_ids=[],
        scores=[],
        sources=[],
        served_at=served,
    )
    store.append_decisions([head])
    store.close()
    with sqlite3.connect(path) as conn:  # the old writer's item row for the list
        conn.execute(OLD_ITEMS_DDL)
        conn.execute(
            "INSERT INTO decision_items VALUES ('r1', 1, 'i7', 0.5, '[\"als\"]', 1.0, 'u1', ?)",
            (int(served.timestamp() * 1_000_000),),
        )
    conn.close()
    before = _digest(path)
    with pytest.raises(StoreUnavailable) as caught:
        open_store(f"sqlite:///{path}?mode=ro")
    assert "missing: old table decision_items" in str(caught.value)
    assert _digest(path) == before
    open_store(f"sqlite:///{path}").close()  # writable: the old rows are packed into r1
    store = open_store(f"sqlite:///{path}?mode=ro")
    try:
        found = store.get_decision("r1")
    finally:
        store.close()
    # the oracle: the old row's item, score and source, in the list read-only
    assert found is not None and found.item_ids == ("i7",)
    assert found.scores == (0.5,) and found.sources == (("als",),)


def test_read_only_opens_no_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    with pytest.raises(StoreUnavailable, match="no SQLite store at"):
        open_store(f"sqlite:///{missing}?mode=ro")
    assert not missing.exists()


def test_cli_reads_a_read_only_store_and_refuses_its_writes(
    locked_store: tuple[Path, str],
) -> None:
    path, url = locked_store
    listed = runner.invoke(app, ["keys", "list", "--json", "--store", url])
    assert listed.exit_code == 0, listed.output
    assert '"k1"' in listed.stdout
    made = runner.invoke(app, ["keys", "create", "--name", "x", "--scopes", "read", "--store", url])
    assert made.exit_code == 3, made.output
    assert made.exception is None or isinstance(made.exception, SystemExit)
    assert f"{path} is open read-only" in " ".join(made.stderr.split())
    assert "Traceback" not in made.output


def test_restore_refuses_a_store_named_read_only(tmp_path: Path) -> None:
    store = tmp_path / "s.sqlite"
    open_store(f"sqlite:///{store}").close()
    saved = tmp_path / "b.sqlite"
    assert (
        runner.invoke(
            app, ["backup", "--out", str(saved), "--store", f"sqlite:///{store}"]
        ).exit_code
        == 0
    )
    before = _digest(store)
    args = ["restore", str(saved), "--force", "--store", f"sqlite:///{store}?mode=ro"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "named read-only (?mode=ro): nothing restored" in " ".join(result.stderr.split())
    assert _digest(store) == before


# Whether a store is read-only is SQLite's answer, not a guess from permissions. Root passes every
# permission check, so these run in a child process as ``nobody`` there (``setpriv``).
_OPENS = """
import json, logging, os, sys
from pathlib import Path
from recsmith.store.open import open_store
from recsmith.store.url_scheme import sqlite_file
from recsmith.testing.contracts import event, ingest
lines = []
handler = logging.Handler()
handler.emit = lambda record: lines.append(record.getMessage())
logging.getLogger("recsmith.store.sqlite").addHandler(handler)
folder = Path(sys.argv[1])
def store(name, mode, hold):
    path = folder / name
    made = open_store(f"sqlite:///{path}")
    ingest(made, [event("i1", "e1")])
    if not hold:
        made.close()
        for extra in ("-wal", "-shm", "-writer"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
    path.chmod(mode)
    return path, made
held = store("held.sqlite", 0o644, True)  # a running server holds it: -wal and -shm exist
copy = store("copy.sqlite", 0o444, False)  # a clean copy, not writable
mine = store("mine.sqlite", 0o644, False)  # a clean copy, writable, in a read-only directory
loose = store("loose.sqlite", 0o444, False)  # not writable, in a directory that is
folder.chmod(0o555)
out = {}
for name, path in [("held", held[0]), ("copy", copy[0]), ("mine", mine[0])]:
    opened = open_store(f"sqlite:///{path}")
    try:
        ingest(opened, [event("i2", "e2")])
        out[name] = ["writable", opened.count_events()]
    except Exception as exc:
        out[name] = [opened.read_only, opened.count_events(), str(exc)]
    opened.close()
folder.chmod(0o755)
opened = open_store(f"sqlite:///{loose[0]}")
out["loose"] = [opened.read_only, opened.count_events()]
opened.close()
out["log"] = lines
print(json.dumps(out))
"""


@pytest.mark.skipif(ROOT and shutil.which("setpriv") is None, reason="needs setpriv as root")
def test_read_only_is_what_sqlite_refuses_not_a_permission_guess() -> None:
    folder = Path(tempfile.mkdtemp(prefix="qfix21-"))
    try:
        if ROOT:
            shutil.chown(folder, "nobody")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
        nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        done = subprocess.run(
            [*(nobody if ROOT else []), sys.executable, "-c", _OPENS, str(folder)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)
    # a held store in a directory the process cannot write is written, as SQLite can
    assert out["held"] == ["writable", 2]
    # a copy SQLite refuses is read, and a write on it names the file
    reason, count, error = out["copy"]
    assert reason.startswith("SQLite cannot write it: ") and count == 1
    assert "copy.sqlite is open read-only (SQLite cannot write it" in error
    # a file the process may write, whose WAL needs a -shm the directory refuses: read through an
    # immutable connection, which SQLite opens read-only itself (no query_only needed), so the
    # write is refused with the same line, and the file is not written (its one event stays)
    reason, count, error = out["mine"]
    assert reason.startswith("SQLite cannot write it: ") and count == 1
    assert "mine.sqlite is open read-only (SQLite cannot write it" in error
    # a 0444 file in a writable directory: SQLite refuses only a page write, so it is probed
    assert out["loose"][0].startswith("SQLite cannot write it: ") and out["loose"][1] == 1
    assert [line.split(": ")[0] for line in out["log"]] == [
        f"SQLite store {folder}/copy.sqlite is open read-only",
        f"SQLite store {folder}/mine.sqlite is open read-only",
        f"SQLite store {folder}/loose.sqlite is open read-only",
    ]


def test_only_a_url_ending_in_mode_ro_is_read_only(tmp_path: Path) -> None:
    """Any other ``?`` stays part of the file name, as it always was: ``?mode=ro&cache=shared``
    names a file of that name, opened writable (and created), not a read-only ``s.sqlite``."""
    named = tmp_path / "s.sqlite?mode=ro&cache=shared"
    assert sqlite_file(f"sqlite:///{named}") == (str(named), False)
    assert sqlite_file(f"sqlite:///{tmp_path}/s.sqlite?mode=ro") == (f"{tmp_path}/s.sqlite", True)
    store = open_store(f"sqlite:///{named}")
    try:
        assert store.read_only is None
        ingest(store, [event("i1", "e1")])
        assert store.count_events() == 1
    finally:
        store.close()
    assert named.is_file() and not (tmp_path / "s.sqlite").exists()
