"""`recsmith experiment start|stop|list|plan|promote` and `deploy --canary` on a real registry:
variants are checked like a deploy, one experiment per placement, names never reused, and the
canary/promote round trip ends with the treatment deployed and the experiment stopped."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.experiments.registry import ExperimentRegistry
from recsmith.governance.releases import ModelRegistry
from recsmith.store.open import open_store

pytestmark = pytest.mark.usefixtures("audit_store")  # deploy & co. write the audit trail

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(events_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {}
    for name in ("popular", "itemknn"):
        args = [
            "-q",
            "train",
            "--data",
            str(events_csv),
            "--model",
            name,
            "--out",
            str(root / name),
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        out[name] = root / name
    return out


@pytest.fixture
def registry(tmp_path: Path, trained: dict[str, Path]) -> Path:
    root = tmp_path / "registry"
    result = runner.invoke(
        app, ["-q", "deploy", "--registry", str(root), "--model-dir", str(trained["popular"])]
    )
    assert result.exit_code == 0, result.stderr
    return root


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_start_list_stop(registry: Path, trained: dict[str, Path], audit_store: str) -> None:
    started_at = datetime.now(UTC)
    current = ModelRegistry(registry).current()
    code, out, err = _run(
        "experiment",
        "start",
        "ab",
        "--registry",
        str(registry),
        "--variant",
        f"control={current}",
        "--variant",
        f"treatment={trained['itemknn']}:20",
        "--json",
    )
    assert code == 0, err
    started = json.loads(out.strip().splitlines()[-1])
    assert [(v["name"], v["weight"]) for v in started["variants"]] == [
        ("control", 80.0),
        ("treatment", 20.0),
    ]
    assert started["variants"][0]["target"] == current  # a release by version
    assert started["variants"][1]["target"] == str(trained["itemknn"].resolve())  # a dir by path
    code, out, _ = _run("experiment", "list", "--registry", str(registry), "--json")
    assert [e["name"] for e in json.loads(out)] == ["ab"]
    code, _, err = _run("experiment", "stop", "ab", "--registry", str(registry))
    assert code == 0, err
    assert not ExperimentRegistry(registry).get("ab").running
    # names are never reused: the decision log keeps them
    code, _, err = _run(
        "experiment",
        "start",
        "ab",
        "--registry",
        str(registry),
        "--variant",
        f"control={current}",
        "--variant",
        f"treatment={trained['itemknn']}",
    )
    assert code == 2 and "names are never reused" in err
    store = open_store(audit_store)
    try:
        trail = [(r.action, r.target, r.outcome) for r in store.scan_audit(started_at)]
    finally:
        store.close()
    assert trail[:2] == [("experiment.start", "ab", "ok"), ("experiment.stop", "ab", "ok")]
    assert trail[2][:2] == ("experiment.start", "ab") and "never reused" in trail[2][2]
    assert len(trail) == 3


def test_one_experiment_per_placement(registry: Path, trained: dict[str, Path]) -> None:
    current = ModelRegistry(registry).current()
    variants = ["--variant", f"control={current}", "--variant", f"treatment={trained['itemknn']}"]
    assert (
        _run(
            "experiment",
            "start",
            "home",
            "--registry",
            str(registry),
            "--placement",
            "home",
            *variants,
        )[0]
        == 0
    )
    assert (
        _run(
            "experiment",
            "start",
            "cart",
            "--registry",
            str(registry),
            "--placement",
            "cart",
            *variants,
        )[0]
        == 0
    )
    code, _, err = _run("experiment", "start", "all", "--registry", str(registry), *variants)
    assert code == 2 and "--placement" in err and "'home' is running" in err


def test_bad_variants_are_refused_naming_why(
    registry: Path, trained: dict[str, Path], tmp_path: Path
) -> None:
    current = ModelRegistry(registry).current()
    code, _, err = _run(
        "experiment",
        "start",
        "x",
        "--registry",
        str(registry),
        "--variant",
        f"control={current}",
        "--variant",
        "treatment=no-such-thing",
    )
    assert code == 2 and "--variant" in err and "neither a release" in err
    broken = tmp_path / "broken"
    shutil.copytree(trained["itemknn"], broken)
    for f in broken.rglob("*.npy"):
        f.write_bytes(b"garbage")
    code, _, err = _run(
        "experiment",
        "start",
        "y",
        "--registry",
        str(registry),
        "--variant",
        f"control={current}",
        "--variant",
        f"treatment={broken}",
    )
    assert code == 3 and "does not load" in err
    code, _, err = _run(
        "experiment", "start", "z", "--registry", str(registry), "--variant", f"control={current}"
    )
    assert code == 2 and "control and a treatment" in err
    assert ExperimentRegistry(registry).all() == []  # nothing half-started


def test_canary_then_promote(registry: Path, trained: dict[str, Path]) -> None:
    models = ModelRegistry(registry)
    before = models.current()
    code, out, err = _run(
        "deploy", str(trained["itemknn"]), "--canary", "10", "--registry", str(registry), "--json"
    )
    assert code == 0, err
    canary = json.loads(out.strip().splitlines()[-1])
    assert models.current() == before  # a canary does not deploy
    assert canary["canary"] and [v["weight"] for v in canary["variants"]] == [90.0, 10.0]
    assert canary["variants"][0]["target"] == before
    treatment = canary["variants"][1]["target"]
    assert treatment in {r.version for r in models.releases()}  # published first
    code, out, err = _run(
        "experiment", "promote", canary["name"], "--registry", str(registry), "--json"
    )
    assert code == 0, err
    assert models.current() == treatment
    assert not ExperimentRegistry(registry).get(canary["name"]).running


def test_plan_prints_units_per_variant() -> None:
    code, out, _ = _run("experiment", "plan", "--baseline-ctr", "0.03", "--mde", "0.05", "--json")
    assert code == 0
    assert 207_000 < json.loads(out)["units_per_variant"] < 209_000
    code, _, err = _run("experiment", "plan", "--baseline-ctr", "3", "--mde", "0.05")
    assert code == 2 and "--baseline-ctr" in err


def test_start_with_thompson_allocation(registry: Path, trained: dict[str, Path]) -> None:
    """The allocation options reach the stored experiment; an impossible floor is refused with
    the option's name and nothing starts."""
    current = ModelRegistry(registry).current()
    base = ["experiment", "start", "--registry", str(registry), "--variant", f"control={current}"]
    base += ["--variant", f"treatment={trained['itemknn']}", "--allocation", "thompson"]
    code, _, err = _run(*base[:2], "ts-bad", *base[2:], "--min-share", "0.5")
    assert code != 0 and "--min-share" in err
    assert ExperimentRegistry(registry).running() == []
    code, out, err = _run(
        *base[:2], "ts", *base[2:], "--kpi", "conversion", "--burn-in", "50", "--json"
    )
    assert code == 0, err
    stored = ExperimentRegistry(registry).get("ts")
    assert (stored.allocation, stored.kpi, stored.min_share, stored.burn_in) == (
        "thompson",
        "conversion",
        0.05,
        50,
    )
    assert json.loads(out.strip().splitlines()[-1])["allocation"] == "thompson"
