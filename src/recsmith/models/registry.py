"""Models by short name: what the CLI and config files use (``--model ials --param
factors=128``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pydantic

from recsmith.errors import UnknownModelError, ValidationError
from recsmith.models.als import ImplicitALS
from recsmith.models.base import Recommender
from recsmith.models.bpr import BPR
from recsmith.models.content import ContentBased
from recsmith.models.cooccurrence import Cooccurrence
from recsmith.models.ease import EASE
from recsmith.models.hybrid import Hybrid
from recsmith.models.itemknn import ItemKNN
from recsmith.models.popularity import Popular, Trending
from recsmith.models.rp3beta import RP3Beta
from recsmith.models.sasrec import SASRec
from recsmith.models.sknn import SessionKNN
from recsmith.models.slist import Slist
from recsmith.models.transitions import Transitions
from recsmith.models.two_tower import TwoTower
from recsmith.models.userknn import UserKNN
from recsmith.validation_reasons import unknown_key

MODELS: Mapping[str, type[Recommender]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            Popular,
            Trending,
            ItemKNN,
            RP3Beta,
            UserKNN,
            ImplicitALS,
            BPR,
            EASE,
            ContentBased,
            Cooccurrence,
            SessionKNN,
            Transitions,
            Slist,
            Hybrid,
            SASRec,
            TwoTower,
        )
    }
)


def model_class(name: str) -> type[Recommender]:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r} (known: {', '.join(sorted(MODELS))})"
        ) from None


class ParamError(ValidationError):
    """A model parameter refused by the model's config: ``param FIELD: REASON (model NAME)``,
    its parts kept so that a command can name its own option (``evaluate --param MODEL.KEY``)."""

    def __init__(self, model: str, param: str, problem: str) -> None:
        super().__init__(f"param {param}", f"{problem} (model {model})")
        self.model = model
        self.param = param
        self.problem = problem


def create(name: str, **params: Any) -> Recommender:
    """A new, unfitted model; string parameter values are converted by the model's config."""
    cls = model_class(name)
    try:
        return cls(cls.Config.model_validate(params, strict=False))
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "param"
        reason = err["msg"]
        if err["type"] == "extra_forbidden":  # a typo: say the parameter meant
            reason = unknown_key(cls.Config, err["loc"], top="parameter")
        raise ParamError(name, field, reason) from None


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["factors=64", "alpha=2"]`` → dict; values stay strings for the config to convert."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError("--param", f"expected key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
