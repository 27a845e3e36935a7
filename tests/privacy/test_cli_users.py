"""``recsmith users delete|export|consent`` and ``recsmith purge`` against a real SQLite store."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.store.ingest import ingest_events
from recsmith.store.sqlite import SQLiteStore


def _run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(
        app, list(args), env={"RECSMITH_PRIVACY__ERASE_SETTLE_S": "0", **(env or {})}
    )


def _store_with(path: Path, users: dict[str, int]) -> str:
    store = SQLiteStore(path)
    records = [
        {
            "user_id": u,
            "item_id": f"i{n}",
            "event_type": "view",
            "timestamp": time.time() - 3600 * n,
        }
        for u, count in users.items()
        for n in range(1, count + 1)
    ]
    ingest_events(store, records, EventSettings(), source="test")
    store.close()
    return f"sqlite:///{path}"


def test_delete_takes_ids_and_a_file_and_reports_counts(tmp_path: Path) -> None:
    url = _store_with(tmp_path / "s.sqlite", {"a": 2, "b": 3, "c": 1})
    ids = tmp_path / "ids.txt"
    ids.write_text("b\n\n a \n")
    result = _run("users", "delete", "a", "--file", str(ids), "--store", url, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(r["user_id"], r["removed"]["events"]) for r in report] == [("a", 2), ("b", 3)]
    store = SQLiteStore(tmp_path / "s.sqlite")
    assert store.count_events() == 1
    store.close()


def test_delete_refuses_a_bad_id_before_erasing_anyone(tmp_path: Path) -> None:
    url = _store_with(tmp_path / "s.sqlite", {"a": 2})
    result = _run("users", "delete", "a", " ", "--store", url)
    assert result.exit_code != 0 and "ID" in result.output
    result = _run("users", "delete", "--store", url)
    assert result.exit_code != 0 and "at least one" in result.output
    store = SQLiteStore(tmp_path / "s.sqlite")
    assert store.count_events() == 2
    store.close()


def test_export_writes_their_document(tmp_path: Path) -> None:
    url = _store_with(tmp_path / "s.sqlite", {"a": 2, "b": 1})
    out = tmp_path / "a.json"
    assert _run("users", "export", "a", "--store", url, "--out", str(out)).exit_code == 0
    document = json.loads(out.read_text())
    assert document["user_id"] == "a" and [e["item_id"] for e in document["events"]] == ["i2", "i1"]
    assert document["consent"] == {"personalization": True, "tracking": True}


def test_consent_then_purge(tmp_path: Path) -> None:
    url = _store_with(tmp_path / "s.sqlite", {"a": 30})  # events 1 to 30 hours old
    result = _run("users", "consent", "a", "--no-personalization", "--tracking", "--store", url)
    assert result.exit_code == 0, result.output
    document = json.loads(_run("users", "export", "a", "--store", url).stdout)
    assert document["consent"] == {"personalization": False, "tracking": True}
    env = {"RECSMITH_PRIVACY__RETAIN_EVENTS_DAYS": "0.52"}  # 12.48 h: events 13 to 30 h old go
    result = _run("purge", "--store", url, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"events": 18, "decisions": 0}
    plain = _run("purge", "--store", url, env=env)
    assert "removed 0 events, 0 decisions; kept all dead_letters" in plain.stdout
