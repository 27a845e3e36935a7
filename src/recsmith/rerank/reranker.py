"""The re-ranking stage: business rules, then diversity, then caps and pins, cut to ``k``.

A pure function of its inputs (no I/O, no clock, no randomness), so the same call serves a request
and an offline batch, and a test can pin its output. The order is the one in ``plan.py``:

    remove (availability, exclude, blocklist, filters)  → boost/bury → pins held for their slots
    → select (MMR when ``diversity`` > 0, else relevance order; the cap checked while selecting)
    → place pins, cut to ``k``

Removal comes first and everything after only reorders or drops survivors, which is why no
unavailable, filtered, excluded or blocklisted item can appear whatever the scores, boosts or pins.
Caps are enforced *inside* selection rather than after it, so a capped category frees its slot for
the next-best item instead of leaving the list short.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import sparse

from recsmith.ids import IdMap
from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.mmr import MMR
from recsmith.rerank.plan import RulePlan
from recsmith.rerank.rules import Rule, compile_rules
from recsmith.rerank.similarity import CategorySimilarity, EmbeddingSimilarity, Similarity
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries

if TYPE_CHECKING:  # recsmith.fairness builds on this package: no import cycle at run time
    from recsmith.fairness.stage import Fairness

#: "category" (primary category), item vectors (dense or sparse rows) or any ``Similarity``.
SimilarityLike = Literal["category"] | Similarity | np.ndarray | sparse.sparray | sparse.spmatrix


def resolve_similarity(similarity: SimilarityLike, table: ItemTable) -> Similarity:
    """Turn the ``similarity`` argument into a ``Similarity`` (vectors are normalised here)."""
    if isinstance(similarity, str):
        if similarity != "category":
            raise ValueError(f"similarity: expected 'category' or item vectors, got {similarity!r}")
        return CategorySimilarity(table.category)
    if isinstance(similarity, np.ndarray) or sparse.issparse(similarity):
        if similarity.shape[0] != table.n_items:
            raise ValueError(f"similarity: {similarity.shape[0]} vectors for {table.n_items} items")
        return EmbeddingSimilarity.cosine(similarity)
    return similarity


def rerank(
    cands: Candidates,
    *,
    k: int,
    table: ItemTable,
    item_ids: IdMap,
    rules: Iterable[Rule] | RulePlan = (),
    diversity: float | None = None,
    similarity: SimilarityLike = "category",
    fairness: Fairness | None = None,
    history: sparse.csr_array | None = None,
) -> Candidates:
    """Re-rank every query of ``cands`` to at most ``k`` rows.

    ``diversity`` in [0, 1] is MMR's ``1 − λ``: 0 or None keeps the relevance order, 1 maximises
    dissimilarity. ``fairness`` (``recsmith.fairness``) adds its controls around that selection,
    calibrating to ``history`` [n_queries, n_items] when it calibrates.
    ``table`` and ``item_ids`` must describe the same items as ``cands.items``.
    Output rows keep their input scores; the row order is the result.
    """
    if len(item_ids) != table.n_items:
        raise ValueError(f"item_ids has {len(item_ids)} ids, the ItemTable {table.n_items} items")
    if diversity is not None and not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be within [0, 1], got {diversity}")
    plan = rules if isinstance(rules, RulePlan) else compile_rules(rules, item_ids)
    select = None
    if diversity:
        select = MMR(1.0 - diversity, resolve_similarity(similarity, table))
    if fairness is not None:
        select = fairness.selector(select, history, table)
    return plan.apply(cands, table, k, select=select)


@dataclass(frozen=True)
class Reranker:
    """The stage as the pipeline holds it: catalogue view and configured rules resolved once at
    load, request rules added per call (``Reranker.rerank(cands, k, rules=...)``)."""

    table: ItemTable
    item_ids: IdMap
    rules: tuple[Rule, ...] = ()
    diversity: float | None = None
    similarity: SimilarityLike = "category"
    fairness: Fairness | None = None
    _plan: RulePlan = field(init=False, repr=False)
    _similarity: Similarity = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plan", compile_rules(self.rules, self.item_ids))
        object.__setattr__(self, "_similarity", resolve_similarity(self.similarity, self.table))

    def rerank(
        self,
        candidates: Candidates,
        k: int,
        *,
        rules: Iterable[Rule] = (),
        diversity: float | None = None,
        queries: Queries | None = None,
    ) -> Candidates:
        """Configured rules plus this request's ``rules`` (pins: configured ones win a clash);
        ``diversity`` overrides the configured trade-off for this call (0 = relevance order; a
        request's diversity also replaces calibration). ``queries`` (who asks) lets the fairness
        controls add exposure floors' candidates and calibrate to the users' histories."""
        history = None
        if self.fairness is not None and queries is not None:
            candidates, history = self.fairness.prepare(
                candidates, queries, k, calibrate=not diversity
            )
        request = list(rules)
        plan = self._plan.combine(compile_rules(request, self.item_ids)) if request else self._plan
        return rerank(
            candidates,
            k=k,
            table=self.table,
            item_ids=self.item_ids,
            rules=plan,
            diversity=self.diversity if diversity is None else diversity,
            similarity=self._similarity,
            fairness=self.fairness,
            history=history,
        )

    def unmet(self, final: Candidates, k: int) -> list[list[str]]:
        """Per query of the re-ranked ``final``: ``exposure:<group>`` for each exposure floor
        its list falls short of (empty lists without fairness controls)."""
        if self.fairness is None or not self.fairness.exposure:
            return []
        short = self.fairness.unmet(final, self.table, k)
        return [[f"exposure:{label}" for label in row] for row in short]
