"""The live rules' versions in both store backends: appended, never rewritten, numbered without
gaps or clashes under concurrent writers, read back by version, audited, and carried by a
SQLite backup and restore."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recsmith.merchandising.document import parse_document
from recsmith.merchandising.versions import (
    AUDIT_ACTION,
    current_rules,
    rule_history,
    rule_version,
    set_rules,
)
from recsmith.store.backup import backup, restore
from recsmith.store.base import EventStore
from recsmith.store.open import open_store
from recsmith.testing.backends import BACKENDS, open_backend

FIRST = {"rerank": {"rules": [{"type": "exclude", "items": ["sku-1"]}]}}
SECOND = {
    "placements": {
        "home": {
            "rerank": {
                "rules": [
                    {
                        "type": "boost",
                        "property": "brand",
                        "equals": "acme",
                        "factor": 2.0,
                        "start": "2026-12-05T00:00:00+01:00",
                    }
                ]
            }
        }
    }
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    with open_backend(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def store(backend: tuple[EventStore, str]) -> EventStore:
    return backend[0]


@pytest.fixture
def store_url(backend: tuple[EventStore, str]) -> str:
    return backend[1]


def test_a_fresh_store_has_no_rules(store: EventStore) -> None:
    assert store.rule_set_version() == 0
    assert store.rule_sets(5) == [] and current_rules(store) is None
    assert rule_version(store, 1) is None


def test_versions_are_appended_read_back_and_audited(store: EventStore, store_url: str) -> None:
    documents = [parse_document(FIRST), parse_document(SECOND), parse_document({})]
    stored = [set_rules(store, d) for d in documents]
    assert [s.version for s in stored] == [1, 2, 3]
    assert store.rule_set_version() == 3
    reopened = open_store(store_url)  # another process's view
    try:
        assert [h.version for h in rule_history(reopened, 10)] == [3, 2, 1]
        assert [h.version for h in rule_history(reopened, 2)] == [3, 2]
        for original, document in zip(stored, documents, strict=True):
            again = rule_version(reopened, original.version)
            assert again is not None and again.document == document
            assert again.set_by == original.set_by and again.set_by.startswith("cli:")
        second = rule_version(reopened, 2)
        assert second is not None  # the window's start survives the store, as the same instant
        [boost] = second.document.placements["home"].rerank.rules
        assert boost.start == datetime(2026, 12, 4, 23, tzinfo=UTC)
        latest = current_rules(reopened)
        assert latest is not None and latest.version == 3 and latest.document.empty
    finally:
        reopened.close()
    audit = [r for r in store.scan_audit(action=AUDIT_ACTION)]
    assert [(r.detail["previous_version"], r.detail["version"]) for r in audit] == [
        (None, 1),
        (1, 2),
        (2, 3),
    ]
    assert [r.detail["rules"] for r in audit] == [
        {"rerank.rules": 1},
        {"placements.home.rerank.rules": 1},
        {},
    ]
    assert [r.detail["pipeline_rules"] for r in audit] == [False, False, True]


def test_concurrent_writers_each_get_their_own_next_version(
    store: EventStore, store_url: str
) -> None:
    document = parse_document(FIRST)
    got: list[int] = []
    lock = threading.Lock()

    def write() -> None:
        own = open_store(store_url)  # its own connection, as another process would have
        try:
            for _ in range(5):
                version = own.add_rule_set(document.model_dump_json(), "writer", 1)
                with lock:
                    got.append(version)
        finally:
            own.close()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 21))
    assert store.rule_set_version() == 20


def test_a_sqlite_backup_and_restore_carry_the_rule_versions(tmp_path: Path) -> None:
    source = tmp_path / "source.sqlite"
    store = open_store(f"sqlite:///{source}")
    set_rules(store, parse_document(FIRST))
    set_rules(store, parse_document(SECOND))
    store.close()
    summary = backup(source, tmp_path / "backup.sqlite")
    assert summary.rows["rule_sets"] == 2
    target = tmp_path / "restored.sqlite"
    restore(tmp_path / "backup.sqlite", target, force=False)
    restored = open_store(f"sqlite:///{target}")
    try:
        got = [h.document for h in rule_history(restored)]
        assert got == [parse_document(SECOND), parse_document(FIRST)]
    finally:
        restored.close()
