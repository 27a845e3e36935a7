"""``train`` pointed at data it cannot read says where that data should go instead.

A MovieLens-100K ``u.data.gz`` (tab-separated, no header: written here, not copied from a data
set) is not an events file: the error must point to ``import --format movielens`` with the
directory, and the command it suggests is run as printed. An empty default store is named, and
reading it creates nothing.
"""

from __future__ import annotations

import gzip
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

runner = CliRunner()
#: user, item, rating, time: 3 users x 4 items, enough for the popularity model.
U_DATA = "".join(
    f"{user}\t{item}\t{(user + item) % 5 + 1}\t{881250949 + 60 * (4 * user + item)}\n"
    for user in range(1, 4)
    for item in range(1, 5)
)


@pytest.fixture
def movielens_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "ml-100k"
    directory.mkdir()
    with gzip.open(directory / "u.data.gz", "wt") as out:
        out.write(U_DATA)
    return directory


def test_a_data_set_file_points_to_import_and_the_suggestion_works(
    movielens_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--data", str(movielens_dir / "u.data.gz")])
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert err.startswith("error: --data: u.data.gz: unsupported file type")
    assert "movielens, lastfm-hetrec, retailrocket, diginetica" in err
    suggested = re.search(r"`recsmith (import --format movielens [^`]+)`", err)
    assert suggested is not None, err
    line = shlex.split(suggested.group(1))
    assert line[-1] == str(movielens_dir)
    store = f"sqlite:///{tmp_path / 'ml.sqlite'}"
    imported = runner.invoke(app, [*line, "--store", store, "--json"])
    assert imported.exit_code == 0, imported.output
    assert '"accepted": 12' in imported.stdout  # every line of U_DATA
    trained = runner.invoke(
        app, ["train", "--store", store, "--model", "popular", "--out", "m", "--json"]
    )
    assert trained.exit_code == 0, trained.output
    assert '"n_users": 3' in trained.stdout


def test_a_directory_given_to_data_points_to_import_too(movielens_dir: Path) -> None:
    result = runner.invoke(app, ["train", "--data", str(movielens_dir)])
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert f"`recsmith import --format movielens {movielens_dir}`" in err


def test_an_empty_default_store_is_named_and_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./recsmith.toml: the default store
    result = runner.invoke(app, ["train", "--out", "m1"])
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    default = tmp_path / "recsmith-data" / "recsmith.sqlite"
    assert "sqlite:///recsmith-data/recsmith.sqlite" in err
    assert str(default) in err
    assert "the default store" in err and "recsmith import" in err
    assert list(tmp_path.iterdir()) == []  # reading created no store


def test_an_empty_configured_store_is_named_as_the_configs(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    cfg = tmp_path / "r.toml"
    cfg.write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    result = runner.invoke(app, ["-c", str(cfg), "evaluate"])
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert f"no events to learn from in sqlite:///{db}" in err
    assert "the store.url of the config" in err
