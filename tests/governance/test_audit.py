"""The audit trail on SQLite and PostgreSQL: what a record keeps, what it never keeps (a key's
secret), how it is searched, and that the table refuses to be edited."""

from __future__ import annotations

import ast
import os
import pwd
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

import recsmith
from recsmith.errors import ValidationError
from recsmith.governance.audit import ACTIONS, AuditRecord, action_filter, record_audit
from recsmith.governance.keys import create_api_key
from recsmith.store.base import EventStore
from recsmith.testing.backends import BACKENDS, open_backend

#: How a CLI action is named: the operating-system user, found here without ``getpass``.
CLI = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[EventStore, str]]:
    with open_backend(request.param, tmp_path) as opened:
        yield opened


def raw(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement on a connection of its own (not the store's), autocommitted."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)) as c:
            return c.execute(statement).fetchall()
    import psycopg

    parts = urlsplit(url)
    schema = dict(parse_qsl(parts.query))["schema"]
    server = parts._replace(query="").geturl()
    with psycopg.connect(server, autocommit=True, options=f"-c search_path={schema}") as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


def every_text_in_the_store(url: str) -> str:
    """All of the audit table's cells as one text (the place a secret would leak to)."""
    return repr(raw(url, "SELECT * FROM audit_log"))


def test_a_key_action_is_recorded_with_its_id_and_name_never_its_secret(
    backend: tuple[EventStore, str],
) -> None:
    store, url = backend
    key, secret = create_api_key(store, "ops-bot", ["admin"])
    before = datetime.now(UTC)
    record_audit(store, action="deploy", target="v42", key=key, detail={"from": "v41"})
    after = datetime.now(UTC)
    created, found = store.scan_audit()
    assert (created.action, created.target, created.key_name) == ("key.create", key.key_id, CLI)
    assert created.detail == {"name": "ops-bot", "scopes": ["admin"], "expires_at": None}
    assert (found.key_id, found.key_name, found.action, found.target, found.outcome) == (
        key.key_id,
        "ops-bot",
        "deploy",
        "v42",
        "ok",
    )
    assert found.detail == {"from": "v41"}
    assert before - timedelta(microseconds=1) <= found.at <= after
    assert found.at.tzinfo is not None
    assert secret not in every_text_in_the_store(url)
    random_part = secret.removeprefix(f"rsk_{key.key_id}_")  # may hold "_" itself
    assert len(random_part) == 32 and random_part not in every_text_in_the_store(url)


def test_a_cli_action_names_the_operating_system_user(backend: tuple[EventStore, str]) -> None:
    store, _ = backend
    record_audit(store, action="rollback", target="v1", outcome="no earlier release")
    (found,) = store.scan_audit()
    assert found.key_id is None
    assert found.key_name == CLI
    assert found.outcome == "no earlier release"


def test_the_table_refuses_update_and_delete(backend: tuple[EventStore, str]) -> None:
    store, url = backend
    record_audit(store, action="key.revoke", target="abc")
    for statement in ("UPDATE audit_log SET outcome = 'forged'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            raw(url, statement)
    if not url.startswith("sqlite"):
        with pytest.raises(Exception, match="append-only"):
            raw(url, "TRUNCATE audit_log")
    (kept,) = store.scan_audit()
    assert (kept.action, kept.target, kept.outcome) == ("key.revoke", "abc", "ok")


def test_scan_filters_by_time_and_action_prefix_and_keeps_the_latest(
    backend: tuple[EventStore, str],
) -> None:
    store, _ = backend
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    names = ["deploy", "key.create", "keyring", "key.revoke", "rollback", "key.create"]
    store.append_audit(
        [
            AuditRecord(t0 + timedelta(hours=h), None, "cli:x", name, f"t{h}", "ok", {})
            for h, name in enumerate(names)
        ]
    )
    assert [r.target for r in store.scan_audit()] == ["t0", "t1", "t2", "t3", "t4", "t5"]
    assert [r.target for r in store.scan_audit(action="key")] == ["t1", "t3", "t5"]
    assert [r.target for r in store.scan_audit(action="key.create")] == ["t1", "t5"]
    assert [r.target for r in store.scan_audit(since=t0 + timedelta(hours=3))] == [
        "t3",
        "t4",
        "t5",
    ]
    assert [r.target for r in store.scan_audit(limit=2)] == ["t4", "t5"]
    assert store.scan_audit(action="erase") == []
    # a filter is a parameter, not SQL: it matches no action (an injection would match them all)
    assert store.scan_audit(action="x' OR '1'='1") == []


def test_bad_records_are_refused_naming_the_field(backend: tuple[EventStore, str]) -> None:
    store, _ = backend
    with pytest.raises(ValidationError, match="detail"):
        record_audit(store, action="deploy", target="v1", detail={"when": object()})
    with pytest.raises(ValidationError, match="action"):
        record_audit(store, action=" ", target="v1")
    with pytest.raises(ValidationError, match="action"):
        record_audit(store, action="deploys", target="v1")  # no reader's filter could find it
    assert store.scan_audit() == []


def _recorded_actions() -> set[str]:
    """Every action literal the source hands ``record_audit``, ``audited`` or a router's
    ``_audit`` (read from the source, not from ``ACTIONS``): an action missing from ``ACTIONS``
    would make its admin command fail."""
    names: set[str] = set()
    for path in Path(recsmith.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            given = {k.arg: k.value for k in node.keywords}.get("action")
            if given is None and called in ("audited", "_audit") and len(node.args) > 1:
                given = node.args[1]
            if called in ("record_audit", "audited", "_audit", "run_in_threadpool") and (
                isinstance(given, ast.Constant)
            ):
                names.add(given.value)
    return names


def test_every_recorded_action_is_known_and_the_filter_refuses_others() -> None:
    recorded = _recorded_actions()
    assert {"deploy", "key.revoke", "erase", "shadow.stop", "reload"} <= recorded  # the scan works
    assert recorded | {"rules.set"} == ACTIONS  # rules.set: a module constant, not a literal
    assert action_filter(None) is None
    assert action_filter("key") == "key" and action_filter("key.create") == "key.create"
    with pytest.raises(ValidationError, match="action") as refused:
        action_filter("nosuch")
    assert "'nosuch'" in refused.value.reason
    assert "alias, alias.link" in refused.value.reason and "shadow.stop" in refused.value.reason
