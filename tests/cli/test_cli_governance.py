"""``recsmith keys list|revoke|create --expires``, ``recsmith audit`` and ``recsmith deadletters
list|replay`` as the README shows them, on a real SQLite store."""

from __future__ import annotations

import json
import os
import pwd
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.store.ingest import ingest_events
from recsmith.store.open import open_store

runner = CliRunner()
CLI = f"cli:{pwd.getpwuid(os.getuid()).pw_name}"


def run(*args: str) -> Any:
    return runner.invoke(app, list(args))


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_keys_expire_list_and_revoke(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    before = datetime.now(UTC)
    made = run("keys", "create", "--name", "bot", "--scopes", "read", "--expires", "90d",
               "--store", store, "--json")  # fmt: skip
    after = datetime.now(UTC)
    assert made.exit_code == 0, made.stderr
    key = json.loads(made.stdout)
    expires = datetime.fromisoformat(key["expires_at"])
    assert before + timedelta(days=90) <= expires <= after + timedelta(days=90)
    dated = run("keys", "create", "--name", "y", "--expires", "2999-01-01", "--store", store)
    assert dated.exit_code == 0, dated.stderr

    listed = run("keys", "list", "--store", store, "--json")
    assert listed.exit_code == 0 and key["secret"] not in listed.stdout
    rows = {r["name"]: r for r in lines(listed.stdout)}
    assert rows["bot"]["state"] == "active" and rows["bot"]["scopes"] == ["read"]
    assert rows["y"]["expires_at"] == "2999-01-01T00:00:00+00:00"

    revoked = run("keys", "revoke", key["key_id"], "--store", store)
    assert revoked.exit_code == 0, revoked.stderr
    assert f"key {key['key_id']} (bot) revoked at" in revoked.stderr
    rows = {r["name"]: r for r in lines(run("keys", "list", "--store", store, "--json").stdout)}
    assert rows["bot"]["state"] == "revoked" and rows["y"]["state"] == "active"
    table = run("keys", "list", "--store", store)
    assert "revoked" in table.stdout and key["key_id"] in table.stdout


def test_key_commands_refuse_bad_input_naming_it(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    for expires, why in (("soon", "neither a span"), ("2001-01-01", "not in the future")):
        bad = run("keys", "create", "--expires", expires, "--store", store)
        assert bad.exit_code == 2 and "--expires" in bad.stderr and why in bad.stderr
    unknown = run("keys", "revoke", "nosuchkey", "--store", store)
    assert unknown.exit_code == 2
    assert "key_id: no API key has the id 'nosuchkey'" in unknown.stderr


def test_audit_shows_key_actions_and_deploys_with_their_outcome(
    tmp_path: Path, audit_store: str
) -> None:
    made = run("keys", "create", "--name", "bot", "--store", audit_store, "--json")
    key_id = json.loads(made.stdout)["key_id"]
    assert run("keys", "revoke", key_id, "--store", audit_store).exit_code == 0
    assert run("keys", "revoke", "nosuchkey", "--store", audit_store).exit_code == 2
    refused = run("deploy", "nothere", "--registry", str(tmp_path / "registry"))
    assert refused.exit_code == 2  # still recorded, with why

    trail = run("audit", "--json")  # the configured store (RECSMITH_STORE__URL)
    assert trail.exit_code == 0, trail.stderr
    records = lines(trail.stdout)
    assert [(r["action"], r["target"], r["outcome"]) for r in records] == [
        ("key.create", key_id, "ok"),
        ("key.revoke", key_id, "ok"),
        ("key.revoke", "nosuchkey", "unknown key"),
        ("deploy", "nothere", "--registry: no such registry directory: "
         f"{tmp_path / 'registry'}"),
    ]  # fmt: skip
    assert {(r["key_id"], r["key_name"]) for r in records} == {(None, CLI)}
    keys_only = lines(run("audit", "--action", "key", "--json").stdout)
    assert [r["action"] for r in keys_only] == ["key.create", "key.revoke", "key.revoke"]
    assert lines(run("audit", "--since", "2999-01-01", "--json").stdout) == []
    table = run("audit")
    assert "key.revoke" in table.stdout and CLI in table.stdout
    bad = run("audit", "--since", "last tuesday")
    assert bad.exit_code == 2 and "--since" in bad.stderr
    unknown = run("audit", "--action", "keys")  # not an action: refused, not an empty trail
    assert unknown.exit_code == 2
    assert "--action: unknown action 'keys'; known: " in unknown.stderr
    assert " key, key.create, key.revoke," in unknown.stderr


def test_deadletters_list_and_replay_after_adding_a_type(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    store = open_store(f"sqlite:///{db}")
    records = [
        {"event_id": f"w{n}", "user_id": "u1", "item_id": f"i{n}", "event_type": "wishlist",
         "timestamp": 1_700_000_000 + n}
        for n in range(3)
    ]  # fmt: skip
    records.append({**records[0], "event_id": "bad", "user_id": 5})
    ingest_events(store, records, EventSettings(), source="wish.jsonl")
    store.close()
    config = tmp_path / "recsmith.toml"
    config.write_text("[events.weights]\nview = 1.0\nwishlist = 2.0\n")
    at = ("--store", f"sqlite:///{db}")

    listed = run("-c", str(config), "deadletters", "list", *at, "--json")
    assert listed.exit_code == 0, listed.stderr
    letters = lines(listed.stdout)
    assert [d["payload"]["event_id"] for d in letters] == ["w0", "w1", "w2", "bad"]
    assert {e["field"] for e in letters[3]["errors"]} == {"user_id", "event_type"}
    only_bad = run("-c", str(config), "deadletters", "list", "--reason", "quote", *at, "--json")
    assert [d["payload"]["event_id"] for d in lines(only_bad.stdout)] == ["bad"]

    replayed = run("-c", str(config), "deadletters", "replay", *at, "--json")
    assert replayed.exit_code == 0, replayed.stderr
    counts = json.loads(replayed.stdout)
    assert (counts["examined"], counts["stored"], counts["still_refused"]) == (4, 3, 1)
    again = json.loads(run("-c", str(config), "deadletters", "replay", *at, "--json").stdout)
    assert (again["examined"], again["stored"]) == (1, 0)

    store = open_store(f"sqlite:///{db}")
    try:
        assert store.count_events() == 3
        trail = store.scan_audit(action="deadletters.replay")
    finally:
        store.close()
    assert [(r.outcome, r.detail["stored"]) for r in trail] == [("ok", 3), ("ok", 0)]
