"""Settings: defaults, the TOML file, environment overrides, and clear errors."""

from pathlib import Path

import pydantic
import pytest

from recsmith.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_and_matches_defaults() -> None:
    example = load_settings(ROOT / "recsmith.example.toml")
    assert example.events.weights == load_settings(None).events.weights
    assert example.serving.model_dir == Path("recsmith-data/model")


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[store]\nurl = "sqlite:///a.sqlite"\n[serving]\nport = 9000\n')
    monkeypatch.setenv("RECSMITH_SERVING__PORT", "9100")
    settings = load_settings(cfg)
    assert settings.store.url == "sqlite:///a.sqlite"
    assert settings.serving.port == 9100


def test_bad_values_name_the_field(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[events.weights]\nview = "lots"\n')
    with pytest.raises(pydantic.ValidationError, match="weights"):
        load_settings(cfg)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "nope.toml")
