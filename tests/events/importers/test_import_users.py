"""``recsmith import --format users`` and ml-100k's ``u.user``: profiles into the store, bad
records rejected with the field named (#15)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.config import EventSettings
from recsmith.errors import ValidationError
from recsmith.events.importers import import_source, read_source
from recsmith.events.schema import User
from recsmith.store.sqlite import SQLiteStore


def test_a_csv_of_profiles_is_stored_and_bad_rows_are_named(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "users.csv"
    path.write_text("user_id,age,gender,plan\nu1,34,F,pro\nu2,,M,\n,40,F,x\n007,0.5,,free\n")
    result = import_source(store, read_source("users", path), settings)
    assert (result.users.accepted, result.users_rejected_count) == (3, 1)
    [bad] = result.users.rejected
    assert bad.index == 2 and bad.errors[0].field == "user_id"
    assert result.as_counts()["users_accepted"] == 3
    assert store.users() == [
        User(user_id="007", properties={"age": 0.5, "plan": "free"}),  # the id stays text
        User(user_id="u1", properties={"age": 34, "gender": "F", "plan": "pro"}),
        User(user_id="u2", properties={"gender": "M"}),
    ]


def test_jsonl_properties_are_checked_and_an_events_file_is_refused(
    tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    path = tmp_path / "users.jsonl"
    path.write_text(
        '{"user_id": "a", "properties": {"tier": 2}}\n'
        '{"user_id": "b", "properties": {"tags": ["x"]}}\n'
    )
    result = import_source(store, read_source("users", path), settings)
    assert result.users.accepted == 1
    assert [e.field for e in result.users.rejected[0].errors] == ["properties.tags"]
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp\nu1,i1,1700000000\n")
    with pytest.raises(ValidationError, match="is it an events file"):
        read_source("users", events)


def test_the_cli_says_how_many_profiles_it_stored(tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("user_id,segment\nu1,a\n ,b\n")
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    done = CliRunner().invoke(app, ["import", "-f", "users", str(path), "--store", store])
    assert done.exit_code == 0, done.stderr
    assert "users: 1 stored, 1 rejected" in done.stderr
    assert "user record 2: user_id" in done.stderr


def test_ml100k_profiles_come_from_u_user(
    dataset: Callable[[str], Path], tmp_path: Path, store: SQLiteStore, settings: EventSettings
) -> None:
    folder = tmp_path / "ml"
    folder.mkdir()
    for name in ("u.user", "u.item", "u.genre"):
        shutil.copy(dataset("movielens-100k") / name, folder / name)
    (folder / "u.data").write_text("1\t1\t5\t874965758\n")
    result = import_source(store, read_source("movielens", folder), settings)
    assert result.users.accepted == 943
    first = (dataset("movielens-100k") / "u.user").read_text().splitlines()[0].split("|")
    assert store.get_user(first[0]) == User(
        user_id=first[0],
        properties={"age": int(first[1]), "gender": first[2], "occupation": first[3]},
    )
