"""``recsmith evaluate --json`` carries the fairness figures, equal to the runner's on one split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recsmith.cli._data import load_catalog, load_events
from recsmith.cli.app import app
from recsmith.config import Settings
from recsmith.evaluation.grouping import GroupSpec
from recsmith.evaluation.runner import evaluate_models
from recsmith.evaluation.split import parse_split
from recsmith.events.schema import User
from recsmith.simulate import simulate
from recsmith.store.open import open_store

runner = CliRunner()
MODELS = ["popular", "itemknn"]
SPLIT = "leave-last-out"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    sim = simulate(n_users=150, n_items=80)
    folder = tmp_path_factory.mktemp("data")
    events, items = folder / "events.csv", folder / "items.jsonl"
    columns = ["user_id", "item_id", "timestamp", "event_type", "session_id"]
    sim.events[columns].to_csv(events, index=False)
    items.write_text("".join(json.dumps(it) + "\n" for it in sim.items))
    return events, items


def _run(args: list[str], out: Path) -> dict:
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.stderr
    return json.loads(out.read_text())


def test_json_carries_named_fairness_keys_equal_to_the_runner(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    events_file, items_file = files
    args = ["evaluate", "--data", str(events_file), "--items", str(items_file)]
    args += ["--models", ",".join(MODELS), "--split", SPLIT]
    payload = _run(args, tmp_path / "r.json")
    settings = Settings()
    events = load_events(events_file, None, settings)
    catalog = load_catalog(items_file, events_file, None, settings)
    results, _ = evaluate_models(
        events, parse_split(SPLIT), MODELS, 10, settings.events.weights, items=catalog
    )
    for got, want in zip(payload["results"], results, strict=True):
        assert got["model"] == want.model
        for key in ("exposure_gini", "exposure_entropy", "miscalibration"):
            assert np.isfinite(got["beyond"][key])
            assert got["beyond"][key] == pytest.approx(want.beyond[key], abs=1e-12)
        groups = got["groups"]
        assert groups["by"] == "activity" and groups["metric"] == "ndcg"
        assert [g["name"] for g in groups["groups"]] == ["light", "medium", "heavy"]
        for g, w in zip(groups["groups"], want.groups.groups, strict=True):
            assert g["users"] == w.users
            assert g["metrics"] == pytest.approx(w.metrics, abs=1e-12)
        assert groups["gap"] == pytest.approx(want.groups.gap, abs=1e-12)
        assert sum(g["users"] for g in groups["groups"]) == payload["stats"]["evaluated_users"]
        names = {g["name"] for g in got["exposure_groups"]["groups"]}
        assert got["exposure_groups"]["by"] == "category"
        assert names == {c for it in catalog for c in it.categories}
    result = runner.invoke(app, [*args, "--json", str(tmp_path / "again.json")])
    assert "fairness @10" in result.stdout


def test_item_groups_by_a_catalogue_property(files: tuple[Path, Path], tmp_path: Path) -> None:
    events_file, items_file = files
    args = ["evaluate", "--data", str(events_file), "--items", str(items_file), "--models"]
    args += ["popular", "--split", SPLIT, "--item-groups", "property:brand"]
    payload = _run(args, tmp_path / "r.json")
    brands = {
        json.loads(line)["properties"]["brand"] for line in items_file.read_text().splitlines()
    }
    exposure = payload["results"][0]["exposure_groups"]
    assert exposure["by"] == "property:brand"
    assert {g["name"] for g in exposure["groups"]} == brands
    assert sum(g["slot_share"] for g in exposure["groups"]) == pytest.approx(1.0)


def test_user_groups_from_store_profiles(files: tuple[Path, Path], tmp_path: Path) -> None:
    events_file, _ = files
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    events = load_events(events_file, None, Settings())
    store = open_store(url)
    try:
        store.append(events)
        users = sorted(events["user_id"].unique())
        store.upsert_users(
            [User(user_id=u, properties={"tier": "gold"}) for u in users[::2]]
        )  # every other user has no tier
    finally:
        store.close()
    args = ["evaluate", "--store", url, "--models", "popular", "--split", SPLIT]
    payload = _run([*args, "--groups", "property:tier"], tmp_path / "r.json")
    groups = payload["results"][0]["groups"]
    assert groups["by"] == "property:tier"
    sizes = {g["name"]: g["users"] for g in groups["groups"]}
    assert set(sizes) == {"gold", "(none)"}
    assert sum(sizes.values()) == payload["stats"]["evaluated_users"]
    settings = Settings()
    results, _ = evaluate_models(
        events,
        parse_split(SPLIT),
        ["popular"],
        10,
        settings.events.weights,
        user_groups=GroupSpec("property", "tier"),
        profiles={u: {"tier": "gold"} for u in users[::2]},
    )
    want = results[0].groups
    assert sizes == {g.name: g.users for g in want.groups}
    assert groups["gap"] == pytest.approx(want.gap, abs=1e-12)
    assert (groups["best"], groups["worst"]) == (want.best, want.worst)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--groups", "tier"], "--groups"),
        (["--item-groups", "property:"], "--item-groups"),
        (["--groups", "property:tier"], "store's user profiles"),
    ],
)
def test_bad_group_options_name_the_option(
    files: tuple[Path, Path], extra: list[str], says: str
) -> None:
    events_file, _ = files
    result = runner.invoke(app, ["evaluate", "--data", str(events_file), *extra])
    assert result.exit_code != 0
    assert says in " ".join(result.stderr.split())


def test_report_shows_the_same_fairness_figures(files: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    events_file, items_file = files
    page_path = tmp_path / "r.html"
    args = ["evaluate", "--data", str(events_file), "--items", str(items_file), "--models"]
    args += ["popular,itemknn", "--split", SPLIT, "--report", str(page_path)]
    payload = _run(args, tmp_path / "r.json")
    page = page_path.read_text(encoding="utf-8")
    assert "Fairness: exposure, calibration and group parity" in page
    for r in payload["results"]:
        rows = [part.split("</tr>")[0] for part in page.split(f'<tr data-model="{r["model"]}">')]
        fairness_row = next(row for row in rows if 'data-metric="miscalibration"' in row)
        for key in ("exposure_gini", "exposure_entropy", "miscalibration"):
            cell = f'data-metric="{key}">{r["beyond"][key]:.4f}<'
            assert cell in fairness_row
        for g in r["groups"]["groups"]:
            assert f"{g['name']} (n = {g['users']:,}): {g['metrics']['ndcg']:.4f}" in fairness_row
        assert f"{r['groups']['gap']:+.4f}" in fairness_row
