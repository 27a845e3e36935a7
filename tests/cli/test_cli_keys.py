"""``recsmith keys create`` as the README shows it: the secret is printed once, only its hash is
stored, and the key opens exactly the scopes it was given on a server over that store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import Settings
from recsmith.serving import create_app

runner = CliRunner()


def test_a_created_key_opens_its_scopes_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    store = f"sqlite:///{db}"
    args = ["keys", "create", "--name", "shop-backend", "--scopes", "ingest"]
    made = runner.invoke(app, [*args, "--store", store, "--json"])
    assert made.exit_code == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["name"] == "shop-backend" and key["scopes"] == ["ingest"]
    secret = key["secret"]
    assert secret.startswith(f"rsk_{key['key_id']}_")
    stored = db.read_bytes()
    assert secret.encode() not in stored  # the secret is shown once, never kept
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored

    plain = runner.invoke(app, ["keys", "create", "--name", "ops", "--store", store])
    assert plain.exit_code == 0 and plain.stdout.strip().startswith("rsk_")
    assert "cannot be shown again" in " ".join(plain.stderr.split())

    with TestClient(create_app(Settings(store={"url": store}))) as client:
        auth = {"Authorization": f"Bearer {secret}"}
        assert client.post("/v1/events", json=[], headers=auth).status_code == 200  # ingest
        assert client.get("/v1/popular", headers=auth).status_code == 403  # not read
        assert client.post("/v1/admin/reload", headers=auth).status_code == 403  # not admin
        last = "y" if secret.endswith("x") else "x"  # a secret ending in "x" made "wrong" right
        wrong = {"Authorization": f"Bearer {secret[:-1]}{last}"}
        assert client.post("/v1/events", json=[], headers=wrong).status_code == 401


def test_an_unknown_scope_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    outcome = runner.invoke(app, ["keys", "create", "--scopes", "read,wirte", "--store", store])
    assert outcome.exit_code == 2
    assert "scopes" in outcome.stderr and "wirte" in outcome.stderr


def test_a_key_name_with_a_control_character_is_refused_as_over_http(tmp_path: Path) -> None:
    """The CLI refuses what ``POST /v1/admin/keys`` refuses, with its reason: a C0 or C1
    control character (a NEL, ``\\x85``, had been stored and printed into the key list)."""
    db = tmp_path / "s.sqlite"
    for name in ("caf\x85e", "tab\there"):
        args = ["keys", "create", "--name", name, "--store", f"sqlite:///{db}"]
        outcome = runner.invoke(app, args)
        assert outcome.exit_code == 2, outcome.stdout
        reason = f"error: name: {name!r} is not text without control characters"
        assert outcome.stderr.strip() == reason
    listed = runner.invoke(app, ["keys", "list", "--store", f"sqlite:///{db}", "--json"])
    assert (listed.exit_code, listed.stdout) == (0, "")
