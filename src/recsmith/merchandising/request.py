"""Rules sent with one request: ``POST /v1/users/{id}/recommendations`` with ``{"rules": [...]}``.

The same rule language as a pipeline or live rule file, parsed by the same code (a mistake is a
422 naming ``rules[i].<field>``), checked against the catalogue as live rules are, windows
included; then applied on top of the live rules for that request only (``Reranker.rerank``: its
pins lose a clash with configured ones, bans and filters add up, the tighter cap wins).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from recsmith.bundle import NeedsPipeline
from recsmith.merchandising.checking import NEEDS_PIPELINE
from recsmith.merchandising.live import request_clock
from recsmith.pipeline.rule_check import check_rules
from recsmith.pipeline.runtime import Pipeline
from recsmith.rerank.rules import Rule, parse_rules
from recsmith.rerank.window import active_rules

#: Rules one request may carry (each filter is checked against the whole catalogue).
MAX_RULES = 50


class RecommendationBody(BaseModel):
    """The body of ``POST …/recommendations``; the query string takes the GET route's options."""

    model_config = ConfigDict(extra="forbid")

    rules: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_RULES,
        description="Business rules for this request only, as in a pipeline file's "
        '[[rerank.rules]] (e.g. {"type": "exclude", "items": ["sku-1"]}); README: Rules',
    )


def keep_rules(request: Request, raw: list[dict[str, Any]]) -> None:
    """Hand a body's rules to the recommendation handler (``asked_rules`` reads them)."""
    request.state.rules = raw


def asked_rules(request: Request, served: Any) -> tuple[Rule, ...]:
    """The rules this request's body carried (none for a GET), in force now as the app's live
    rules tell time (``request_clock``, read only when there are rules: a GET pays none); a
    ValidationError naming ``rules[i].<field>`` when one is malformed or refused by the
    catalogue of ``served``; NeedsPipeline (whatever they say) for a single model."""
    # ``request.state``'s own dict, read without building the ``State`` over it (whose
    # missing attribute costs an exception on every GET)
    raw = request.scope.get("state", {}).get("rules")
    if not raw:
        return ()
    if not isinstance(served, Pipeline):  # whatever the rules say: nothing could apply them
        raise NeedsPipeline(NEEDS_PIPELINE)
    rules = parse_rules(raw)
    check_rules(rules, served.table, served.items, "rules[{}]")
    return tuple(active_rules(rules, request_clock(request)))
