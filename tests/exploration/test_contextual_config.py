"""``[contextual]`` is checked when the pipeline file is read: each mistake names its key."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from recsmith.merchandising.document import parse_document
from recsmith.pipeline.config import PipelineConfig

SOURCES = {
    "sources": [{"name": "knn", "model": "itemknn"}, {"name": "trending", "model": "trending"}]
}


def config(contextual: dict[str, Any]) -> PipelineConfig:
    return PipelineConfig.model_validate({"retrieval": SOURCES, "contextual": contextual})


@pytest.mark.parametrize(
    ("contextual", "message"),
    [
        (
            {"arms": ["pipeline", "nope"]},
            "contextual.arms: 'nope' is not 'pipeline' or a retrieval",
        ),
        ({"arms": ["knn", "knn"]}, "arms: distinct names"),
        ({"arms": ["knn"]}, "contextual.arms"),
        ({"arms": ["knn", "trending"], "policy": "greedy"}, "contextual.policy"),
        ({"arms": ["knn", "trending"], "kpi": "revenue"}, "contextual.kpi"),
        ({"arms": ["knn", "trending"], "ridge": 0.0}, "contextual.ridge"),
        ({"arms": ["knn", "trending"], "ranker_features": "yes"}, "contextual.ranker_features"),
    ],
)
def test_mistakes_name_their_key(contextual: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        config(contextual)
    err = caught.value.errors()[0]
    text = ".".join(str(p) for p in err["loc"]) + ": " + err["msg"]
    assert message in text, text


def test_a_valid_table_round_trips_and_is_left_out_when_unset() -> None:
    made = config({"arms": ["pipeline", "trending"], "policy": "linucb", "alpha": 0.5})
    assert made.contextual is not None and made.contextual.arms == ["pipeline", "trending"]
    assert PipelineConfig.model_validate(made.model_dump()) == made
    assert "contextual" not in PipelineConfig.model_validate({"retrieval": SOURCES}).model_dump()


def placed(contextual: dict[str, Any]) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {"retrieval": SOURCES, "placements": {"home": {"contextual": contextual}}}
    )


def test_a_placements_own_bandit_names_its_key_and_round_trips() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        placed({"arms": ["pipeline", "nope"]})
    assert "placements.home.contextual.arms: 'nope' is not 'pipeline'" in str(caught.value)
    with pytest.raises(pydantic.ValidationError) as caught:
        placed({"arms": ["knn", "trending"], "kpi": "revenue"})
    assert caught.value.errors()[0]["loc"] == ("placements", "home", "contextual", "kpi")
    made = placed({"arms": ["pipeline", "trending"]})
    assert PipelineConfig.model_validate(made.model_dump()) == made
    unset = PipelineConfig.model_validate({"retrieval": SOURCES, "placements": {"home": {}}})
    assert "contextual" not in unset.model_dump()["placements"]["home"]  # older manifests' form


def test_live_rules_for_a_placement_keep_its_own_bandit() -> None:
    """A rule file replacing a placement's rules (``merchandising``) leaves its bandit be."""
    made = placed({"arms": ["pipeline", "trending"]})
    rules = parse_document({"placements": {"home": {"rerank": {"rules": []}}}})
    bandit = rules.overlay(made).placements["home"].contextual
    assert bandit is not None and bandit.arms == ["pipeline", "trending"]
