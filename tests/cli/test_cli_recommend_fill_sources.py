"""``recsmith recommend`` says which slots the popularity fill took: a model that lists only items
with evidence (EASE, item-kNN) leaves the rest of a long list to popularity, and those rows must
name ``popular``, not the model, with scores below every model item (README: a fill's score
only orders). The oracle is the checkerboard's two groups: no user's history reaches the other
group's items, so no model can have proposed them."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.store.sqlite import SQLiteStore
from recsmith.testing.recommender import checkerboard_events, group_of

pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()
USERS = ["u000", "u001", "u002", "nobody"]


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    events = checkerboard_events()
    path = tmp_path_factory.mktemp("board") / "events.csv"
    events.assign(timestamp=events["ts"] // 1_000_000, value=1.0)[
        ["user_id", "item_id", "timestamp", "value"]
    ].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("model", ["ease", "itemknn"])
def test_popularity_fills_are_named_popular_and_scored_below_the_model(
    model: str, events_file: Path, tmp_path: Path
) -> None:
    out, recs = tmp_path / "model", tmp_path / "recs.csv"
    result = runner.invoke(
        app, ["train", "--data", str(events_file), "--model", model, "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    users = tmp_path / "users.txt"
    users.write_text("\n".join(USERS) + "\n")
    args = ["recommend", "--model-dir", str(out), "--users", str(users), "--k", "15"]
    result = runner.invoke(app, [*args, "--out", str(recs)])
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(recs, dtype={"user_id": str, "item_id": str, "sources": str})
    assert list(frame.columns) == ["user_id", "item_id", "rank", "score", "sources"]
    assert set(frame["sources"]) == {model, "popular"}
    for user in USERS[:3]:
        rows = frame[frame.user_id == user]
        own = int(user[1:]) % 2
        other = rows[group_of(rows.item_id.to_numpy()) != own]
        assert len(other) > 0  # 15 slots: more than the user's group has left to list
        assert (other.sources == "popular").all()  # nothing in the history reaches them
        by_model = rows[rows.sources == model]
        assert len(by_model) > 0 and (group_of(by_model.item_id.to_numpy()) == own).all()
        fills = rows[rows.sources == "popular"]
        assert fills["rank"].min() > by_model["rank"].max()
        assert fills.score.max() <= min(0.0, by_model.score.min()) - 1.0 + 1e-5
    stranger = frame[frame.user_id == "nobody"]
    assert (stranger.sources == "popular").all() and len(stranger) == 15


def test_the_decision_log_records_the_fill_as_popular(events_file: Path, tmp_path: Path) -> None:
    out, recs, exported = tmp_path / "model", tmp_path / "recs.csv", tmp_path / "decisions.csv"
    db = tmp_path / "store.sqlite"
    SQLiteStore(db).close()  # the store exists: the lists are recorded in it
    env = {"RECSMITH_STORE__URL": f"sqlite:///{db}"}
    train = ["train", "--data", str(events_file), "--model", "ease", "--out", str(out)]
    assert runner.invoke(app, train).exit_code == 0
    users = tmp_path / "users.txt"
    users.write_text("u000\nnobody\n")
    args = ["recommend", "--model-dir", str(out), "--users", str(users), "--k", "15"]
    result = runner.invoke(app, [*args, "--out", str(recs)], env=env)
    assert result.exit_code == 0, result.stderr
    export = ["decisions", "export", "--since", "1h", "--format", "csv", "--out", str(exported)]
    assert runner.invoke(app, export, env=env).exit_code == 0
    listed = pd.read_csv(recs, dtype=str)
    shown = pd.read_csv(exported, dtype=str)
    merged = listed.merge(shown, on=["recommendation_id", "item_id"], suffixes=("", "_logged"))
    assert len(merged) == len(listed) == len(shown) == 30
    assert set(merged["sources"]) == {"ease", "popular"}
    assert (merged["sources"] == merged["sources_logged"]).all()
    other = merged[(merged.user_id == "u000") & (group_of(merged.item_id.to_numpy()) == 1)]
    assert len(other) > 0 and (other["sources_logged"] == "popular").all()
