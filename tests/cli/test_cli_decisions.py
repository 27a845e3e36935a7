"""The decision log's commands: batch lists recorded, ``decisions export`` and ``kpis``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.decisions.batch import store_exists
from recsmith.store.sqlite import SQLiteStore

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def model_dir(events_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("m") / "model"
    code, _, err = run("train", "--data", str(events_csv), "--model", "popular", "--out", str(out))
    assert code == 0, err
    return out


def test_batch_lists_are_recorded_exported_and_counted(model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite"
    SQLiteStore(db).close()  # the store exists: lists are recorded in it
    env = {"RECSMITH_STORE__URL": f"sqlite:///{db}"}
    users = tmp_path / "users.txt"
    users.write_text("u0001\nu0002\nnobody\n")
    out = tmp_path / "recs.csv"
    code, _, err = run(
        "recommend",
        "--model-dir",
        str(model_dir),
        "--users",
        str(users),
        "--k",
        "4",
        "--out",
        str(out),
        env=env,
    )
    assert code == 0, err
    recs = pd.read_csv(out, dtype=str)
    assert recs.groupby("user_id")["recommendation_id"].nunique().tolist() == [1, 1, 1]
    exported = tmp_path / "decisions.csv"
    code, stdout, err = run(
        "decisions",
        "export",
        "--since",
        "1h",
        "--format",
        "csv",
        "--out",
        str(exported),
        "--json",
        env=env,
    )
    assert code == 0, err
    assert json.loads(stdout.splitlines()[-1])["lists"] == 3
    shown = pd.read_csv(exported, dtype={"unit": str, "item_id": str, "recommendation_id": str})
    assert set(shown["route"]) == {"batch"}
    assert shown["latency_ms"].isna().all()  # a batch run times no request: the column is empty
    merged = recs.merge(
        shown, left_on=["recommendation_id", "item_id"], right_on=["recommendation_id", "item_id"]
    )
    assert len(merged) == len(recs) == len(shown)
    assert (merged["rank"].astype(int) == merged["position"]).all()
    assert (merged["user_id"] == merged["unit"]).all()
    code, stdout, err = run("kpis", "--since", "1h", "--json", env=env)
    assert code == 0, err
    groups = json.loads(stdout.splitlines()[-1])["groups"]
    assert [(g["lists"], g["impressions"], g["users"], g["clicks"]) for g in groups] == [
        (3, len(recs), 3, 0)
    ]
    assert run("kpis", "--by", "colour", env=env)[0] == 2


def test_no_store_is_created_for_a_batch_run(model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "absent.sqlite"
    users = tmp_path / "users.txt"
    users.write_text("u0001\n")
    code, stdout, err = run(
        "recommend",
        "--model-dir",
        str(model_dir),
        "--users",
        str(users),
        "--json",
        env={"RECSMITH_STORE__URL": f"sqlite:///{db}"},
    )
    assert code == 0, err
    assert not db.exists()
    assert json.loads(stdout.splitlines()[-1])["decisions_logged"] is False


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing/dir/recs.csv", "--out: no such directory: {tmp}/missing/dir"),
        (".", "--out: {tmp} is a directory, not a file"),
    ],
)
def test_an_unwritable_out_is_one_error_line_and_nothing_is_recorded(
    model_dir: Path, tmp_path: Path, where: str, reason: str
) -> None:
    db = tmp_path / "store.sqlite"
    SQLiteStore(db).close()  # the store exists: a run that wrote its lists would record them
    users = tmp_path / "users.txt"
    users.write_text("u0001\nu0002\n")
    out = tmp_path / where if where != "." else tmp_path
    code, stdout, err = run(
        "recommend",
        "--model-dir",
        str(model_dir),
        "--users",
        str(users),
        "--out",
        str(out),
        env={"RECSMITH_STORE__URL": f"sqlite:///{db}"},
    )
    assert code == 2
    assert err.splitlines() == ["error: " + reason.format(tmp=tmp_path)]
    assert "Traceback" not in stdout + err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM decisions").fetchone() == (0,)


def test_a_store_named_read_only_records_no_batch(model_dir: Path, tmp_path: Path) -> None:
    """``?mode=ro`` is read as the shared URL parser reads it: the store is not written (and a
    file that happens to carry the suffix in its name is not taken for the store)."""
    db = tmp_path / "store.sqlite"
    SQLiteStore(db).close()
    (tmp_path / "other.sqlite?mode=ro").write_bytes(b"")  # other.sqlite itself is absent
    assert store_exists(f"sqlite:///{db}")
    assert not store_exists(f"sqlite:///{db}?mode=ro")
    assert not store_exists(f"sqlite:///{tmp_path}/other.sqlite?mode=ro")
    before = db.read_bytes()
    users = tmp_path / "users.txt"
    users.write_text("u0001\n")
    args = ["recommend", "--model-dir", str(model_dir), "--users", str(users), "--json"]
    code, stdout, err = run(*args, env={"RECSMITH_STORE__URL": f"sqlite:///{db}?mode=ro"})
    assert code == 0, err
    assert json.loads(stdout.splitlines()[-1])["decisions_logged"] is False
    assert db.read_bytes() == before
