"""Where a listed item stood after each stage, and which re-ranking stages moved it.

The stages are replayed on the pool the pipeline re-ranked (``Trace.pool``), switching them on one
at a time: business rules alone (removals, boosts, pins, caps) over the whole pool, then with
diversity (MMR), then the pipeline's own re-ranked rows (fairness controls included), then the
rows served (exploration). Every stage is a pure function of the pool, so the replay is what the
pipeline computed, stage for stage. A position that changes between two consecutive stages names
the later stage in ``moved_by``; an item that only moved up because items above it were removed
was moved by the rules, which is what removed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise

from recsmith.explain.trace import Trace
from recsmith.rerank.reranker import Reranker
from recsmith.retrieval.candidates import Candidates


def stage_lists(reranker: Reranker, trace: Trace) -> dict[str, Candidates]:
    """The one query's rows after each stage this pipeline runs, in pipeline order."""
    assert trace.pool is not None and trace.reranked is not None and trace.served is not None
    pool, rules = trace.pool, trace.rules
    alone = replace(reranker, fairness=None)
    out = {"ranked": pool, "rules": alone.rerank(pool, len(pool), rules=rules, diversity=0.0)}
    diversity = reranker.diversity if trace.diversity is None else trace.diversity
    if diversity:
        out["diversity"] = alone.rerank(pool, trace.depth, rules=rules, diversity=diversity)
    if reranker.fairness is not None:
        out["fairness"] = trace.reranked
    if trace.served is not trace.reranked:
        out["exploration"] = trace.served
    # the last stage's rows are the served ones themselves, not a replay of them
    out[list(out)[-1]] = trace.served
    return out


def positions(stages: dict[str, Candidates], item: int) -> dict[str, int | None]:
    """The item's 1-based position in each stage's rows (None: not among them)."""
    out: dict[str, int | None] = {}
    for name, rows in stages.items():
        where = (rows.items == item).nonzero()[0]
        out[name] = int(where[0]) + 1 if len(where) else None
    return out


def moved_by(at: dict[str, int | None], by_rules: Sequence[str] = ()) -> list[str]:
    """The stages after ``ranked`` whose position differs from the stage before, with the
    individual rules that moved the item (``rule_steps.moved_by_rules``) where ``rules`` stands:
    listed even when they cancel out and the stage as a whole left the item where it was."""
    out: list[str] = []
    for a, b in pairwise(at):
        if at[a] != at[b]:
            out.append(b)
        if b == "rules":
            out.extend(by_rules)
    return out
