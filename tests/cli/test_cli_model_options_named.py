"""A bad model name or parameter is refused before any data is read, naming the option the user
typed (``--model``, ``--param`` or ``--params-file``; the registry alone said ``unknown model``
or ``param KEY``), and a retrain on a store too small to hold a holdout and a past before it is
a one-line refusal naming ``--holdout`` (was a traceback of a bare ValueError). The oracle: the
options as each command's ``--help`` lists them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app

runner = CliRunner()
UNKNOWN = "unknown model 'nosuch' (known: bpr, "


def refused(args: list[str]) -> str:
    """The one stderr line of a usage error (exit 2, nothing on stdout)."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""
    return result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["train", "--model", "nosuch"], f"error: --model: {UNKNOWN}"),
        (["tune", "--model", "nosuch"], f"error: --model: {UNKNOWN}"),
        (["retrain", "--registry", "{tmp}/r", "--model", "nosuch"], f"error: --model: {UNKNOWN}"),
        (
            ["train", "--model", "ials", "--param", "factors=abc"],
            "error: --param: factors: Input should be a valid integer",
        ),
        (
            ["retrain", "--registry", "{tmp}/r", "--model", "itemknn", "--param", "neighborz=3"],
            "error: --param: neighborz: unknown parameter (did you mean neighbors?) "
            "(model itemknn)",
        ),
        (
            ["train", "--model", "ials", "--params-file", "{tmp}/p.toml"],
            "error: --params-file: factors: Input should be a valid integer",
        ),
    ],
)
def test_a_bad_model_or_parameter_names_the_option(
    tmp_path: Path, args: list[str], says: str
) -> None:
    (tmp_path / "p.toml").write_text('[models.ials]\nfactors = "x"\n')
    (tmp_path / "none.csv").write_text("")  # never read: the refusal comes first
    store = f"sqlite:///{tmp_path / 'never.sqlite'}"
    where = ["--store", store] if args[0] == "retrain" else ["--data", str(tmp_path / "none.csv")]
    stderr = refused([a.format(tmp=tmp_path) for a in args] + where)
    assert stderr.startswith(says), stderr
    assert not (tmp_path / "never.sqlite").exists()


def test_a_retrain_with_nothing_before_the_holdout_names_it(tmp_path: Path) -> None:
    """Two events at one time: the newest holdout takes both, leaving nothing to train on."""
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,timestamp\nu1,i1,1700000000\nu2,i1,1700000000\n")
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    assert runner.invoke(app, ["import", str(events), "--store", store]).exit_code == 0
    args = ["retrain", "--registry", str(tmp_path / "r"), "--model", "popular", "--store", store]
    assert refused(args).startswith("error: --holdout: all 2 events fall in the newest holdout")


def test_a_retrain_whose_holdout_users_are_all_new_names_it(tmp_path: Path) -> None:
    """Ten events at ten times: the newest tenth is u3's one event, and u3 has no event before
    the holdout, so no user's lists can be judged (was a bare ValueError's traceback)."""
    rows = [f"u1,i{t},{1700000000 + t}" for t in range(1, 6)]
    rows += [f"u2,i{t - 5},{1700000000 + t}" for t in range(6, 10)]
    rows.append("u3,i1,1700000010")
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    assert runner.invoke(app, ["import", str(events), "--store", store]).exit_code == 0
    args = ["retrain", "--registry", str(tmp_path / "r"), "--model", "popular", "--store", store]
    assert refused(args) == (
        "error: --holdout: no user in the holdout has history before it: nothing to judge on\n"
    )
