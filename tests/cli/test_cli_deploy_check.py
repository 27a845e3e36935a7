"""`deploy` and `rollback` refuse a release that does not load and answer as a server would:
exit 3, one line naming the directory and what is wrong, and the registry's pointer unmoved."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recsmith.cli.app import app
from recsmith.governance.releases import ModelRegistry
from recsmith.store.open import open_store

pytestmark = pytest.mark.usefixtures("audit_store")  # deploy & co. write the audit trail

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(events_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two good models (different versions): deployed as they are, or broken in copies."""
    root = tmp_path_factory.mktemp("models")
    models = {}
    for name in ("itemknn", "ials"):
        out = root / name
        args = ["-q", "train", "--data", str(events_csv), "--model", name, "--out", str(out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        models[name] = out
    return models


def _deploy(registry: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["deploy", "--registry", str(registry), *args])
    return result.exit_code, result.stderr


def _assert_refused(code: int, err: str, *needles: str) -> None:
    assert code == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def _half_written(good: Path, where: Path) -> Path:
    """What a failed save used to leave: ``manifest.json`` and the model, no id maps or
    exclusions."""
    shutil.copytree(good, where)
    shutil.rmtree(where / "ids")
    shutil.rmtree(where / "seen")
    return where


def _corrupt(good: Path, where: Path) -> Path:
    shutil.copytree(good, where)
    path = where / "model" / "arrays" / "user_factors_.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    return where


def _mismatched(good: Path, where: Path) -> Path:
    """Every file loads, but the user factors no longer fit the item factors: only asking the
    model for a list finds it."""
    shutil.copytree(good, where)
    path = where / "model" / "arrays" / "user_factors_.npy"
    np.save(path, np.load(path)[:, :8])
    return where


def test_a_good_directory_is_deployed(
    trained: dict[str, Path], tmp_path: Path, audit_store: str
) -> None:
    started = datetime.now(UTC)
    code, err = _deploy(tmp_path / "reg", "--model-dir", str(trained["itemknn"]))
    assert code == 0, err
    current = ModelRegistry(tmp_path / "reg").current()
    assert current is not None
    store = open_store(audit_store)
    try:
        (record,) = store.scan_audit(started, "deploy")
    finally:
        store.close()
    assert (record.target, record.outcome, record.detail) == (current, "ok", {"previous": None})


@pytest.mark.parametrize(
    ("breaking", "says"),
    [
        (_half_written, "is incomplete: ids is missing"),
        (_corrupt, "does not load"),
        (_mismatched, "mismatch in its core dimension"),
    ],
)
def test_a_broken_directory_is_refused_and_the_pointer_stays(
    trained: dict[str, Path], tmp_path: Path, breaking: object, says: str
) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    code, err = _deploy(reg.root, "--model-dir", str(trained["itemknn"]))
    assert code == 0, err
    good = reg.current()
    broken = breaking(trained["ials"], tmp_path / "broken")  # type: ignore[operator]
    code, err = _deploy(reg.root, "--model-dir", str(broken))
    _assert_refused(code, err, str(broken), says)
    assert reg.current() == good
    assert [r.version for r in reg.releases()] == [good]  # never published either


def test_a_published_version_that_no_longer_loads_is_not_deployed_or_rolled_back_to(
    trained: dict[str, Path], tmp_path: Path
) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    first = reg.publish(trained["ials"])
    second = reg.publish(trained["itemknn"])
    reg.deploy(first)
    reg.deploy(second)
    (reg.path(first) / "seen" / "seen_data.npy").write_bytes(b"not npy")  # damaged since publish
    _assert_refused(*_deploy(reg.root, first), str(reg.path(first)), "does not load")
    assert reg.current() == second
    result = runner.invoke(app, ["rollback", "--registry", str(reg.root)])
    _assert_refused(result.exit_code, result.stderr, str(reg.path(first)), "does not load")
    assert reg.current() == second and reg.previous() == first
