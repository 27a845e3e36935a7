"""What ``ModelConfig``'s docstring says of every model config, checked on two real ones (ALS,
EASE): an unknown key refused, immutable, a JSON round trip, and lax but lossless conversion."""

from __future__ import annotations

import pydantic
import pytest

from recsmith.models.als import ALSConfig
from recsmith.models.ease import EASEConfig


def test_an_unknown_key_is_refused_not_kept_as_a_default() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        ALSConfig(factor=64)  # type: ignore[call-arg]
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_a_config_is_immutable() -> None:
    config = ALSConfig(factors=16)
    with pytest.raises(pydantic.ValidationError):
        config.factors = 32  # type: ignore[misc]
    assert config.factors == 16


@pytest.mark.parametrize("config", [ALSConfig(factors=16, alpha=2.5), EASEConfig()])
def test_a_config_round_trips_through_json(config: pydantic.BaseModel) -> None:
    assert type(config).model_validate_json(config.model_dump_json()) == config


@pytest.mark.parametrize(("given", "taken"), [("64", 64), (64.0, 64), (64, 64)])
def test_a_value_is_converted_where_nothing_is_lost(given: object, taken: int) -> None:
    assert ALSConfig(factors=given).factors == taken  # type: ignore[arg-type]


@pytest.mark.parametrize("given", [64.5, "64.5", "x", None])
def test_a_value_that_would_lose_something_is_refused_naming_the_field(given: object) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        ALSConfig(factors=given)  # type: ignore[arg-type]
    assert caught.value.errors()[0]["loc"] == ("factors",)
