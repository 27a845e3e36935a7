"""The model zoo through the CLI: catalogue-aware training, cold items, anonymous sessions."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from typer.testing import CliRunner

from recsmith.bundle import ModelBundle
from recsmith.cli.app import app
from recsmith.models.sknn import SessionKNN
from recsmith.simulate import simulate

# ``recommend`` logs its lists into the default store when one exists (a quickstart user's
# ./recsmith-data): these commands name none, so they get a store of their own
pytestmark = pytest.mark.usefixtures("audit_store")

runner = CliRunner()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Events with sessions, the catalogue plus one brand-new toy nobody has seen, and a user."""
    sim = simulate(n_users=300, n_items=200, seed=5)
    root = tmp_path_factory.mktemp("shop")
    events = root / "events.csv"
    sim.events[["user_id", "item_id", "timestamp", "event_type", "session_id"]].to_csv(
        events, index=False
    )
    items = [*sim.items]
    template = next(it for it in items if it["categories"] == [sim.category_names[0]])
    items.append({**template, "item_id": "NEW-1", "text": f"brand new {template['text']}"})
    catalog = root / "items.jsonl"
    catalog.write_text("".join(json.dumps(it) + "\n" for it in items))
    fans = sim.user_taste[:, 0].argsort()[-20:]  # users who love that category
    users = root / "users.txt"
    users.write_text("\n".join(sim.user_map.external_ids[fans]) + "\n")
    return events, catalog, users


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_content_recommends_a_cold_item_to_fans_of_its_category(
    shop: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    events, catalog, users = shop
    invoke(
        "train",
        "--data",
        str(events),
        "--items",
        str(catalog),
        "--model",
        "content",
        "--out",
        str(tmp_path / "m"),
    )
    invoke(
        "recommend",
        "--model-dir",
        str(tmp_path / "m"),
        "--users",
        str(users),
        "--k",
        "20",
        "--out",
        str(tmp_path / "r.csv"),
    )
    recs = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert (recs["item_id"] == "NEW-1").sum() >= 5  # many of the 20 fans get the new item


def test_content_without_a_catalogue_says_what_is_missing(
    shop: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    events, _, _ = shop
    result = runner.invoke(
        app, ["train", "--data", str(events), "--model", "content", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code != 0
    assert "metadata" in str(result.exception) + result.stderr


def test_sknn_answers_a_session_without_user_id(
    shop: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    events, _, _ = shop
    invoke("train", "--data", str(events), "--model", "sknn", "--out", str(tmp_path / "m"))
    frame = pd.read_csv(events, dtype=str)
    first_session = frame[frame.session_id == frame.session_id.iloc[0]]
    sessions = tmp_path / "sessions.csv"
    pd.DataFrame({"session_id": "visitor-1", "item_id": first_session.item_id}).to_csv(
        sessions, index=False
    )
    invoke(
        "recommend",
        "--model-dir",
        str(tmp_path / "m"),
        "--sessions",
        str(sessions),
        "--k",
        "5",
        "--out",
        str(tmp_path / "r.csv"),
    )
    recs = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert list(recs.columns[:2]) == ["session_id", "item_id"] and len(recs) == 5
    assert not set(recs.item_id) & set(first_session.item_id)
    # the list is the model's own answer to the session's items, not the popularity fallback
    model = SessionKNN.load(tmp_path / "m" / "model")
    items = ModelBundle.load(tmp_path / "m").items
    cols = np.unique(items.to_index(first_session.item_id.unique()))
    history = sparse.csr_array(
        (np.ones(len(cols), np.float32), cols, [0, len(cols)]), shape=(1, model.n_items)
    )
    own = model.recommend_from_items(history, 5)
    assert (own.ids >= 0).all()
    assert list(recs.item_id) == list(items.to_external(own.ids[0]))


@pytest.mark.parametrize(
    "model",
    [
        "popular",
        "trending",
        "itemknn",
        "rp3beta",
        "userknn",
        "ials",
        "bpr",
        "ease",
        "cooccurrence",
        "sknn",
        "content",
        "hybrid",
    ],
)
def test_every_model_trains_and_recommends(
    model: str, shop: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    events, catalog, users = shop
    invoke(
        "train",
        "--data",
        str(events),
        "--items",
        str(catalog),
        "--model",
        model,
        "--out",
        str(tmp_path / "m"),
    )
    invoke(
        "recommend",
        "--model-dir",
        str(tmp_path / "m"),
        "--users",
        str(users),
        "--k",
        "10",
        "--out",
        str(tmp_path / "r.csv"),
    )
    recs = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert len(recs) == 200 and recs.groupby("user_id").size().eq(10).all()
    # the model itself fills every list: the popularity top-up would hide one that answers nothing
    bundle = ModelBundle.load(tmp_path / "m")
    wanted = users.read_text().split()
    idx = bundle.users.to_index(wanted)
    own = bundle.model.with_evidence(
        bundle.model.recommend(idx, 10, exclude=bundle.exclusions(idx, None))
    )
    assert (own.ids >= 0).all(), "the model left slots for popularity to fill"
    listed = recs.groupby("user_id", sort=False)["item_id"].agg(list)
    assert [listed[u] for u in wanted] == bundle.items.to_external(own.ids).tolist()


def test_rp3beta_takes_its_params_and_names_a_bad_one(
    shop: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    events, _, _ = shop
    train = ["train", "--data", str(events), "--model", "rp3beta", "--out"]
    invoke(*train, str(tmp_path / "m"), "--param", "alpha=0.7", "--param", "neighbors=5")
    model = ModelBundle.load(tmp_path / "m").model
    assert model.get_params() == {"neighbors": 5, "alpha": 0.7, "beta": 0.5, "binary": True}
    assert np.diff(model.item_to_item.indptr).max() == 5  # each item keeps its 5 best
    bad = runner.invoke(app, [*train, str(tmp_path / "bad"), "--param", "beta=-1"])
    assert bad.exit_code != 0
    assert "beta" in bad.stderr and "greater than or equal to 0" in bad.stderr


@pytest.mark.parametrize(
    ("param", "says"),
    [
        ("factor=16", "--param: factor: unknown parameter (did you mean factors?) (model ials)"),
        (
            "zzz=1",
            "--param: zzz: unknown parameter (valid: factors, regularization, alpha, iterations, "
            "random_state, num_threads, starts) (model ials)",
        ),
    ],
)
def test_an_unknown_param_names_the_parameter_meant(
    shop: tuple[Path, Path, Path], tmp_path: Path, param: str, says: str
) -> None:
    """Was pydantic's "Extra inputs are not permitted", which names no valid parameter."""
    events, _, _ = shop
    train = ["train", "--data", str(events), "--model", "ials", "--out", str(tmp_path / "m")]
    bad = runner.invoke(app, [*train, "--param", param])
    assert bad.exit_code == 2, bad.stderr
    assert bad.stderr == f"error: {says}\n"
    assert not (tmp_path / "m").exists()
