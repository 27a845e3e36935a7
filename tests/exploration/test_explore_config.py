"""``[explore]`` in pipeline.toml: read, checked, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsmith.errors import ValidationError
from recsmith.pipeline.config import PipelineConfig, load_pipeline_config

SOURCES = '[[retrieval.sources]]\nname = "knn"\nmodel = "itemknn"\n'


def load(tmp_path: Path, explore: str):
    path = tmp_path / "pipeline.toml"
    path.write_text(SOURCES + "[explore]\n" + explore)
    return load_pipeline_config(path)


def test_a_thompson_table_is_read(tmp_path: Path) -> None:
    cfg = load(tmp_path, 'policy = "thompson"\nepsilon = 0.3\nslots = [2, 5]\nprior = [1, 19]\n')
    assert cfg.explore is not None
    assert cfg.explore.slot_index == (1, 4) and cfg.explore.prior == [1.0, 19.0]


def test_no_table_means_no_exploration(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(SOURCES)
    assert load_pipeline_config(path).explore is None


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ('policy = "greedy"', "explore.policy", "'epsilon', 'thompson' or 'softmax'"),
        ('policy = "epsilon"\nepsilon = 1.5', "explore.epsilon", "less than or equal to 1"),
        ('policy = "softmax"\nepsilon = 0.2', "explore", "'epsilon' is not read by policy"),
        ('policy = "epsilon"\nslots = [0]', "explore", "distinct 1-based positions"),
        ('policy = "epsilon"\npool = "source"', "explore", "go together"),
        ('policy = "epsilon"\npool = "source"\nsource = "nope"', "pipeline", "not a retrieval"),
        ('policy = "thompson"\nprior = [0, 1]', "explore", "must be > 0"),
        ('policy = "softmax"\ntemperature = 0', "explore.temperature", "greater than 0"),
    ],
)
def test_bad_tables_name_the_key(tmp_path: Path, text: str, field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as err:
        load(tmp_path, text + "\n")
    assert field in str(err.value) and reason in str(err.value)


@pytest.mark.parametrize("policy", ["epsilon", "thompson", "softmax"])
def test_a_saved_table_reads_back(tmp_path: Path, policy: str) -> None:
    """A pipeline's manifest stores ``model_dump()`` (every key, defaults included) and a
    release loads it with ``model_validate``: the same table must come back."""
    cfg = load(tmp_path, f'policy = "{policy}"\n')
    again = PipelineConfig.model_validate(cfg.model_dump())
    assert again.explore == cfg.explore
    assert "explore" not in load_pipeline_config_without(tmp_path).model_dump()


def load_pipeline_config_without(tmp_path: Path) -> PipelineConfig:
    path = tmp_path / "plain.toml"
    path.write_text(SOURCES)
    return load_pipeline_config(path)
