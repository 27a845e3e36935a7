"""What ``?explain=true`` adds to each listed item (``ScoredItem.explanation``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

#: The stages an item's position is given after, in pipeline order (those a deployment runs).
STAGES = ("ranked", "rules", "diversity", "fairness", "exploration")


class SourceSay(BaseModel):
    name: str = Field(description="the retrieval source (or 'popular', the fallback under lists)")
    rank: int = Field(description="the item's 1-based rank in that source's proposals")
    score: float | None = Field(description="the source's own score (None: not a number)")


class Contribution(BaseModel):
    feature: str
    value: float | None = Field(description="the feature's value for this item (None: missing)")
    contribution: float = Field(description="its SHAP value: what it added to the raw score")


class RankerExplanation(BaseModel):
    raw_score: float = Field(description="the ranker's raw score: expected_value + Σ contributions")
    expected_value: float = Field(description="the ranker's average raw score (SHAP base value)")
    contributions: list[Contribution] = Field(description="every feature, largest |effect| first")


class Anchor(BaseModel):
    source: str = Field(description="the item-to-item source (or single model) that used it")
    item_id: str = Field(description="an item of the user's history or session behind this one")
    weight: float = Field(description="its item-to-item weight towards the listed item")


class ItemExplanation(BaseModel):
    sources: list[SourceSay] = Field(description="every source that proposed the item")
    ranker: RankerExplanation | None = Field(
        None, description="the ranker's per-feature contributions (None: the item was not ranked)"
    )
    positions: dict[str, int | None] = Field(
        default_factory=dict,
        description=f"1-based position after each stage the deployment runs ({', '.join(STAGES)}); "
        "None: not in that stage's list",
    )
    moved_by: list[str] = Field(
        default_factory=list,
        description="the re-ranking stages that changed its position and, after 'rules', each "
        "business rule that did: 'rules[2] boost category=shoes x2' (its index in the rule file), "
        "'request.rules[0] ...', 'availability' (unavailable or repeated items removed above it)",
    )
    anchors: list[Anchor] = Field(
        default_factory=list, description="the history items behind its reason, strongest first"
    )
