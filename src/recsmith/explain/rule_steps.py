"""Which business rule moved an item: the rules stage replayed one rule at a time.

The rules stage applies every rule at once (``rerank.plan``), so its list alone cannot say which
rule made the difference. Here it is replayed on the same pool with no rules (what availability
and duplicates alone do), then with each rule added to those before it, in the order the stage
lists them: the deployment's (``rules[i]``, its index in the pipeline's or live rule file's
``[[rerank.rules]]``), then the request's (``request.rules[j]``, a ``?category`` filter last). A
rule whose step changes an item's position moved it. The attribution is sequential (a rule is
judged given the ones listed before it), which is how a merchandiser reads a rule file; every
step is a pure function of the pool, so the last step is the rules stage's own list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from recsmith.explain.positions import positions
from recsmith.explain.trace import Trace
from recsmith.rerank.reranker import Reranker
from recsmith.rerank.rules import (
    BlocklistRule,
    BoostRule,
    BuryRule,
    CapPerCategoryRule,
    ExcludeRule,
    FilterRule,
    PinRule,
    Rule,
)
from recsmith.retrieval.candidates import Candidates

#: The step before any rule: what unavailable items and duplicates alone change.
AVAILABILITY = "availability"


def rule_steps(reranker: Reranker, trace: Trace, listed: Sequence[Rule]) -> dict[str, Candidates]:
    """label -> rows, for the rule-less step, then each rule added in turn. ``listed``: the
    deployment's rule file (``config.rerank.rules``), whose indices the labels give."""
    assert trace.pool is not None
    pool = trace.pool
    bare = replace(reranker, rules=(), fairness=None)
    every = [*reranker.rules, *trace.rules]
    labels = [_configured(rule, listed) for rule in reranker.rules]
    labels += [f"request.rules[{j}] {describe(rule)}" for j, rule in enumerate(trace.rules)]
    steps = {AVAILABILITY: bare.rerank(pool, len(pool), diversity=0.0)}
    for n, label in enumerate(labels, start=1):
        steps[label] = bare.rerank(pool, len(pool), rules=every[:n], diversity=0.0)
    return steps


def _configured(rule: Rule, listed: Sequence[Rule]) -> str:
    """``rules[i] ...`` for a rule of the file; a shorthand key's rule (``only_available``,
    ``max_per_category``) is named by the key."""
    for i, mine in enumerate(listed):
        if mine == rule:
            return f"rules[{i}] {describe(rule)}"
    key = "only_available" if isinstance(rule, FilterRule) else "max_per_category"
    return f"rerank.{key} ({describe(rule)})"


def describe(rule: Rule) -> str:
    """A rule in a few words, as its file would say it: ``boost category=shoes x2``."""
    if isinstance(rule, BoostRule | BuryRule):
        return f"{rule.type} {_condition(rule)} x{rule.factor:g}"
    if isinstance(rule, FilterRule):
        return f"filter {_condition(rule)}"
    if isinstance(rule, ExcludeRule | BlocklistRule):
        shown = ", ".join(rule.items[:3]) + (", ..." if len(rule.items) > 3 else "")
        return f"{rule.type} [{shown}]"
    if isinstance(rule, PinRule):
        return f"pin {rule.item} at {rule.position}"
    assert isinstance(rule, CapPerCategoryRule)
    return f"cap_per_category max={rule.max}"


def _condition(rule: FilterRule | BoostRule | BuryRule) -> str:
    if rule.equals is not None:
        test = f"={rule.equals}"
    elif rule.in_ is not None:
        test = f" in [{', '.join(map(str, rule.in_))}]"
    else:
        low, high = ("" if end is None else f"{end:g}" for end in (rule.min, rule.max))
        test = f" in {low}..{high}"
    return f"{'not ' if rule.negate else ''}{rule.property}{test}"


def moved_by_rules(steps: dict[str, Candidates], ranked: int | None, item: int) -> list[str]:
    """The labels of the steps that changed ``item``'s position (``availability`` when the
    rule-less step already differs from its ranked position ``ranked``)."""
    at = positions(steps, item)
    before = [ranked, *at.values()]
    return [label for label, was in zip(at, before, strict=False) if at[label] != was]
