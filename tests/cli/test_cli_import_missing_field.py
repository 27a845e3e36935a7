"""A record missing its id reads the same whatever was imported: ``<kind> record N: <field>:
required`` for events, items and users, from CSV and JSON lines (items and users said pydantic's
"Field required"), and the dead-letter row keeps the same reason."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

runner = CliRunner()

#: (--format, file name, content, the line the importer must print): record 2 lacks its id.
CASES = [
    (
        "events",
        "e.csv",
        "user_id,item_id,timestamp\nu1,i1,1700000000\nu2,,1700000000\n",
        "event record 2: item_id: required",
    ),
    ("items", "i.csv", "item_id,title\ni1,a\n,b\n", "item record 2: item_id: required"),
    ("items", "i.jsonl", '{"item_id": "i1"}\n{"title": "b"}\n', "item record 2: item_id: required"),
    ("users", "u.csv", "user_id,country\nu1,fr\n,de\n", "user record 2: user_id: required"),
    (
        "users",
        "u.jsonl",
        '{"user_id": "u1"}\n{"country": "de"}\n',
        "user record 2: user_id: required",
    ),
]


@pytest.mark.parametrize(("kind", "name", "content", "says"), CASES)
def test_a_missing_id_is_required_in_one_wording(
    tmp_path: Path, kind: str, name: str, content: str, says: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    db = tmp_path / "s.sqlite"
    result = runner.invoke(
        app, ["import", str(path), "--format", kind, "--store", f"sqlite:///{db}"]
    )
    assert result.exit_code == 0, result.output
    rejected = [line.strip() for line in result.stderr.splitlines() if " record " in line]
    assert rejected == [says], result.stderr
    with sqlite3.connect(db) as conn:
        (errors,) = conn.execute("SELECT errors FROM dead_letters").fetchone()
    conn.close()
    field, reason = says.split(": ", 1)[1].split(": ")
    assert json.loads(errors) == [{"field": field, "reason": reason}]
