"""A live rule file: ``[[rerank.rules]]`` and ``[[placements.NAME.rerank.rules]]``, as in a
pipeline file, and how it stands in for the pipeline's own rules.

Only rules, no other ``[rerank]`` key: diversity, caps and fairness stay with the release, which
was evaluated with them. The overlay mirrors ``[placements.NAME.rerank]``: live ``rerank.rules``
replace the pipeline's ``rerank.rules`` (so every placement that does not set its own rules gets
them), live ``placements.NAME.rerank.rules`` replace that placement's (a placement the pipeline
does not configure is created with them). An empty file changes nothing: the pipeline's rules.
``rerank.rules = []`` is not empty: it means "no rules" where the pipeline has some.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsmith.errors import ValidationError
from recsmith.ids import IdMap
from recsmith.pipeline.config import PipelineConfig, PlacementConfig, placement_name_problem
from recsmith.pipeline.rule_check import RuleWarning, check_rules, rule_warnings
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.rules import Rule, rule_error


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleList(_Strict):
    """``[rerank]`` of a live rule file: its ``rules`` only."""

    rules: tuple[Rule, ...]


class PlacementRules(_Strict):
    rerank: RuleList


class RuleDocument(_Strict):
    """See module docstring."""

    rerank: RuleList | None = None
    placements: dict[str, PlacementRules] = Field(
        default_factory=dict, exclude_if=lambda value: not value
    )

    @field_validator("placements")
    @classmethod
    def _names(cls, placements: dict[str, PlacementRules]) -> dict[str, PlacementRules]:
        for name in placements:
            if (problem := placement_name_problem(name)) is not None:
                raise ValueError(problem)
        return placements

    @property
    def empty(self) -> bool:
        """True when the file sets nothing: the pipeline's rules everywhere."""
        return self.rerank is None and not self.placements

    def lists(self) -> Iterator[tuple[str, tuple[Rule, ...]]]:
        """Each rule list with the place errors name it by (``rerank.rules[{}]``)."""
        if self.rerank is not None:
            yield "rerank.rules[{}]", self.rerank.rules
        for name, placed in self.placements.items():
            yield f"placements.{name}.rerank.rules[{{}}]", placed.rerank.rules

    def check(self, table: ItemTable, item_ids: IdMap) -> None:
        """As training checks a pipeline's rules (``check_rules``), against the catalogue and
        items of the release being served; the error names the rule's list, index and field."""
        for where, rules in self.lists():
            check_rules(list(rules), table, item_ids, where)

    def warnings(self, table: ItemTable, item_ids: IdMap) -> list[RuleWarning]:
        """The rules and values that match no item (``rule_warnings``): likely typos, allowed."""
        return [
            w
            for where, rules in self.lists()
            for w in rule_warnings(list(rules), table, item_ids, where)
        ]

    def overlay(self, config: PipelineConfig) -> PipelineConfig:
        """``config`` with these rules in place of its own (see module docstring)."""
        if self.empty:
            return config
        rerank = config.rerank
        if self.rerank is not None:
            rerank = rerank.model_copy(update={"rules": list(self.rerank.rules)})
        placements = dict(config.placements)
        for name, placed in self.placements.items():
            own = placements.get(name, PlacementConfig())  # k, release, explore, bandit kept
            rerank_of = {**own.rerank, "rules": list(placed.rerank.rules)}
            placements[name] = own.model_copy(update={"rerank": rerank_of})
        return config.model_copy(update={"rerank": rerank, "placements": placements})

    def to_json(self) -> dict[str, Any]:
        """The file as JSON (what the store keeps and the API shows); unset keys left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_document(data: Mapping[str, Any]) -> RuleDocument:
    """A rule file from parsed TOML or JSON; ValidationError naming the field, e.g.
    ``rerank.rules[2].factor`` or ``placements.home.rerank.rules[0].item``."""
    try:
        return RuleDocument.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        raise rule_error(exc.errors()[0], RuleDocument) from None


def parse_text(text: str, source: str = "FILE") -> RuleDocument:
    """A rule file's text: TOML (what ``recsmith rules set FILE`` reads), or JSON when it starts
    with ``{`` (what ``rules show`` prints). Empty text is the empty file."""
    return parse_document(load_text(text, source))


def load_text(text: str, source: str, toml: bool | None = None) -> dict[str, Any]:
    """The tables of a rule file's text, not yet checked: TOML when ``toml``, JSON when not,
    and for None JSON when it starts with ``{``, else TOML. ValidationError naming ``source``
    when the text does not parse or is not a table."""
    stripped = text.strip()
    as_json = stripped.startswith("{") if toml is None else not toml
    try:
        data = json.loads(stripped or "{}") if as_json else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        expected = (
            "neither valid TOML nor JSON"
            if toml is None
            else f"not valid {'JSON' if as_json else 'TOML'}"
        )
        raise ValidationError(source, f"{expected}: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError(source, "a rule file is a table (TOML) or an object (JSON)")
    return data
