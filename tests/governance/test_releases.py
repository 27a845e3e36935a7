"""The model registry: publish is immutable, deploy moves the pointer, rollback walks history."""

from pathlib import Path

import pytest

from recsmith.bundle import ModelBundle
from recsmith.config import EventSettings
from recsmith.errors import RecsmithError, ValidationError
from recsmith.features.interactions import Interactions
from recsmith.governance.releases import ModelRegistry
from recsmith.models.registry import create
from recsmith.testing.recommender import checkerboard_events


def trained(tmp_path: Path, name: str) -> Path:
    data = Interactions.from_events(checkerboard_events(), EventSettings().weights)
    out = tmp_path / name
    ModelBundle.train(data, create(name)).save(out)
    return out


def test_deploy_and_rollback(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    assert reg.current() is None
    v1 = reg.publish(trained(tmp_path, "popular"))
    itemknn = trained(tmp_path, "itemknn")
    v2 = reg.publish(itemknn)
    assert reg.publish(itemknn) == v2  # the same artifact again: the same version, a no-op
    assert sorted(r.version for r in reg.releases()) == sorted([v1, v2])
    reg.deploy(v1)
    reg.deploy(v2)
    assert reg.current() == v2
    assert [r.version for r in reg.releases() if r.current] == [v2]
    assert reg.rollback() == v1 and reg.current() == v1
    with pytest.raises(RecsmithError, match="rollback: no earlier") as raised:
        reg.rollback()
    assert not isinstance(raised.value, ValidationError)  # a state failure (exit 3), not usage


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    with pytest.raises(ValidationError, match="no release"):
        reg.deploy("nope")


def test_published_version_is_a_full_copy(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    source = trained(tmp_path, "itemknn")
    version = reg.publish(source)
    assert ModelBundle.load(reg.path(version)).version == version
    assert not [p for p in (tmp_path / "reg" / "versions").iterdir() if p.name.startswith(".")]
