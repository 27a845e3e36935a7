"""Trace: what one pipeline call saw between its stages, kept only when a request asks for an
explanation (``Pipeline.answer(trace=...)``).

The served list is the product of retrieval, ranking, re-ranking and exploration; an explanation
must describe *that* list, not a second computation that might differ (exploration draws from the
bandit counts of the moment). So the pipeline hands the intermediate tables it already holds to
the trace, and the explanation is read off them afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsmith.rerank.rules import Rule
from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries


@dataclass
class Trace:
    """Filled by ``Pipeline._top_k``: ``pool`` are the ranked candidates with the popularity
    fallback below them (what re-ranking takes), ``rules`` and ``diversity`` the request's own
    (category filter included), ``depth`` the re-ranked length, ``reranked`` the re-ranker's
    rows and ``served`` the rows listed (after exploration, when it draws)."""

    queries: Queries | None = None
    pool: Candidates | None = None
    rules: tuple[Rule, ...] = ()
    diversity: float | None = None
    depth: int = 0
    reranked: Candidates | None = None
    served: Candidates | None = None

    def keep(
        self,
        queries: Queries,
        pool: Candidates,
        rules: tuple[Rule, ...],
        diversity: float | None,
        depth: int,
        reranked: Candidates,
        served: Candidates,
    ) -> None:
        self.queries, self.pool, self.rules, self.diversity = queries, pool, rules, diversity
        self.depth, self.reranked, self.served = depth, reranked, served
