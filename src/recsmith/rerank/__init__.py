"""Re-ranking: business rules and diversity over ranked candidates (pure numpy, no I/O).

``rerank`` (or a ``Reranker`` built once per model) is the entry; ``apply_rules`` is the same
without diversity; ``mmr`` is diversity alone. See ``reranker.py`` for the order of operations and
the guarantee it gives, ``rules.py`` for the rule configuration.
"""

from recsmith.rerank.catalog_view import ItemTable
from recsmith.rerank.conditions import Condition
from recsmith.rerank.mmr import MMR, mmr
from recsmith.rerank.plan import RulePlan
from recsmith.rerank.reranker import Reranker, rerank
from recsmith.rerank.rules import (
    BlocklistRule,
    BoostRule,
    BuryRule,
    CapPerCategoryRule,
    ExcludeRule,
    FilterRule,
    PinRule,
    Rule,
    apply_rules,
    compile_rules,
    parse_rules,
)
from recsmith.rerank.similarity import (
    CategorySimilarity,
    EmbeddingSimilarity,
    Similarity,
    SimilarityBlock,
)

__all__ = [
    "MMR",
    "BlocklistRule",
    "BoostRule",
    "BuryRule",
    "CapPerCategoryRule",
    "CategorySimilarity",
    "Condition",
    "EmbeddingSimilarity",
    "ExcludeRule",
    "FilterRule",
    "ItemTable",
    "PinRule",
    "Reranker",
    "Rule",
    "RulePlan",
    "Similarity",
    "SimilarityBlock",
    "apply_rules",
    "compile_rules",
    "mmr",
    "parse_rules",
    "rerank",
]
