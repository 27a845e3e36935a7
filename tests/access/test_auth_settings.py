"""``[auth]`` in the config file: defaults, and bad values named by setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsmith.access.rate_limit import Rate
from recsmith.config import ConfigError, load_settings


def test_defaults_limit_nothing_and_decide_exposure_by_host() -> None:
    auth = load_settings(None).auth
    assert (auth.rates(), auth.expose_metrics, auth.expose_docs) == ({}, "auto", "auto")


def test_rates_per_scope_from_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text('[auth.rate_limits]\nread = "100/s"\ningest = "6000/min"\n')
    assert load_settings(cfg).auth.rates() == {"read": Rate(100, 1), "ingest": Rate(6000, 60)}


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[auth.rate_limits]\nread = "100/x"\n', "auth.rate_limits: read: '100/x' is not a rate"),
        ('[auth.rate_limits]\nreed = "1/s"\n', "auth.rate_limits.reed"),
        ('[auth]\nexpose_metrics = "public"\n', "auth.expose_metrics: Input should be 'auto'"),
        ('[auth]\nexpose_docs = "closed"\n', "auth.expose_docs: Input should be 'auto'"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, toml: str, problem: str) -> None:
    cfg = tmp_path / "r.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert str(info.value).startswith(problem)
