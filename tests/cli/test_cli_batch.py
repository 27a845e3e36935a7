"""The batch CLI contract: train → recommend → evaluate, import --json, exit codes."""

import json
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app

# ``recommend`` logs its lists into the default store when one exists (a quickstart user's
# ./recsmith-data): these commands name none, so they get a store of their own
pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def model_dir(events_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("m") / "model"
    code, _, err = run(
        "train",
        "--data",
        str(events_csv),
        "--model",
        "itemknn",
        "--param",
        "neighbors=30",
        "--out",
        str(out),
    )
    assert code == 0, err
    return out


def test_recommend_writes_every_user_and_excludes_training_items(
    model_dir: Path, events_csv: Path, tmp_path: Path
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("user_id\nu0001\nu0002\n0042\nnobody\n")
    out = tmp_path / "recs.csv"
    code, _, err = run(
        "recommend",
        "--model-dir",
        str(model_dir),
        "--users",
        str(users),
        "--k",
        "7",
        "--out",
        str(out),
    )
    assert code == 0, err
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score", "sources"]
    assert recs.groupby("user_id").size().to_dict() == {
        "u0001": 7,
        "u0002": 7,
        "0042": 7,
        "nobody": 7,
    }
    assert (recs.groupby("user_id")["rank"].apply(list) == [list(range(1, 8))] * 4).all()
    train = pd.read_csv(events_csv, dtype=str)
    for user in ("u0001", "u0002"):
        had = set(train.loc[train.user_id == user, "item_id"])
        assert not had & set(recs.loc[recs.user_id == user, "item_id"])
    unknown = recs[recs.user_id.isin(["0042", "nobody"])]
    assert list(unknown[unknown.user_id == "0042"].item_id) == list(
        unknown[unknown.user_id == "nobody"].item_id
    )


def test_evaluate_personalised_models_beat_popular(events_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    code, stdout, err = run(
        "evaluate",
        "--data",
        str(events_csv),
        "--split",
        "temporal:0.8",
        "--models",
        "popular,itemknn,ials",
        "--k",
        "10",
        "--param",
        "ials.factors=16",
        "--json",
        str(out),
    )
    assert code == 0, err
    assert "ndcg@10" in stdout
    results = {r["model"]: r for r in json.loads(out.read_text())["results"]}
    assert results["ials"]["params"]["factors"] == 16
    popular = results["popular"]["metrics"]["ndcg"]
    assert results["itemknn"]["metrics"]["ndcg"] > popular
    assert results["ials"]["metrics"]["ndcg"] > popular
    for r in results.values():
        assert set(r["metrics"]) == {"precision", "recall", "ndcg", "map", "hit_rate", "mrr"}
        assert 0 < r["coverage"] <= 1


def test_evaluate_is_reproducible(events_csv: Path, tmp_path: Path) -> None:
    outs = []
    for name in ("a.json", "b.json"):
        code, _, err = run(
            "evaluate",
            "--data",
            str(events_csv),
            "--models",
            "ials",
            "--split",
            "leave-last-out",
            "--json",
            str(tmp_path / name),
        )
        assert code == 0, err
        outs.append(json.loads((tmp_path / name).read_text())["results"][0]["metrics"])
    assert outs[0] == outs[1]


def test_import_json_last_line_is_the_counts(events_csv: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    code, stdout, err = run(
        "import", "--format", "events", str(events_csv), "--store", store, "--json"
    )
    assert code == 0, err
    first = json.loads(stdout.strip().splitlines()[-1])
    n_rows = len(pd.read_csv(events_csv))
    assert first["rejected"] == 0 and first["accepted"] + first["duplicates"] == n_rows
    code, stdout, _ = run(
        "import", "--format", "events", str(events_csv), "--store", store, "--json"
    )
    again = json.loads(stdout.strip().splitlines()[-1])
    assert again == {
        "accepted": 0,
        "rejected": 0,
        "duplicates": n_rows,
        "items_accepted": 0,
        "items_rejected": 0,
    }


def test_import_counts_and_names_rejected_items_and_events(tmp_path: Path) -> None:
    items = tmp_path / "items.csv"
    items.write_text("item_id,categories,available\ni1,a|b,false\ni2,,maybe\n,c,true\n")
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    code, stdout, err = run("import", "--format", "items", str(items), "--store", store, "--json")
    assert code == 0, err
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert counts["items_accepted"] == 1 and counts["items_rejected"] == 2  # a script can see it
    # each rejected row is named by its place in the file, from 1, the header not counted
    assert "item record 2: available" in err and "item record 3: item_id" in err
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,timestamp\nu1,i1,1700000000\nu1,i2,yesterday\n")
    code, stdout, err = run("import", "--format", "events", str(events), "--store", store)
    assert code == 0 and "event record 2: timestamp" in err


def test_train_from_store_matches_train_from_file(events_csv: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    assert run("import", str(events_csv), "--store", store)[0] == 0
    for source, out in ((["--store", store], "from-store"), (["--data", str(events_csv)], "file")):
        code, _, err = run("train", *source, "--model", "itemknn", "--out", str(tmp_path / out))
        assert code == 0, err
    dirs = (tmp_path / "from-store", tmp_path / "file")
    a, b = (json.loads((d / "manifest.json").read_text()) for d in dirs)
    same = ("data_fingerprint", "n_users", "n_items", "n_interactions", "config")
    assert {key: a[key] for key in same} == {key: b[key] for key in same}
    assert a["n_users"] == 300
    users = pd.read_csv(events_csv, dtype=str)["user_id"].unique()[:20]
    lists = [ModelBundle.load(d).recommend(users, 10) for d in dirs]
    assert [list(x) for x in lists[0].item_ids] == [list(x) for x in lists[1].item_ids]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--model", "nope", "--data", "x.csv"], "unknown model"),
        (["train", "--model", "ials", "--param", "factors=abc", "--data", "x.csv"], "factors"),
        (["evaluate", "--data", "x.csv", "--split", "bogus:1"], "split"),
        (["train", "--data", "missing.csv"], "missing.csv"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(args: list[str], needle: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert needle in err


def test_version() -> None:
    code, out, _ = run("version")
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert code == 0 and out.strip() == project["version"]


def test_a_user_listed_twice_is_answered_once_and_the_summary_says_so(
    model_dir: Path, tmp_path: Path
) -> None:
    users = tmp_path / "users.txt"
    users.write_text("u0002\nu0001\nu0002\nnobody\n0042\n")  # 5 lines, 4 distinct users
    out = tmp_path / "recs.csv"
    args = ["recommend", "--model-dir", str(model_dir), "--users", str(users), "--k", "3"]
    code, _, err = run(*args, "--out", str(out))
    assert code == 0, err
    assert " ".join(err.split()) == (
        f"wrote 12 rows for 4 users to {out} (2 unknown users got popular items; "
        "1 duplicate user skipped)"
    )
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(recs["user_id"].drop_duplicates()) == ["u0002", "u0001", "nobody", "0042"]
    assert recs.groupby("user_id").size().to_dict() == {
        "u0002": 3,
        "u0001": 3,
        "nobody": 3,
        "0042": 3,
    }
    code, stdout, err = run(*args, "--json")
    assert code == 0, err
    summary = json.loads(stdout.splitlines()[-1])
    assert (summary["users"], summary["rows"], summary["duplicate_users"]) == (4, 12, 1)
