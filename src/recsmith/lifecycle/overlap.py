"""How alike two ranked lists are: what shadow mode records of a candidate release's list beside
the served one. Pure functions of two id sequences (top first)."""

from __future__ import annotations

from collections.abc import Sequence

#: Rank-biased overlap's persistence: the weight of depth d is ``P ** (d - 1)``; 0.9 puts about
#: 86 % of the weight on the first 10 ranks (Webber, Moffat & Zobel 2010).
RBO_P = 0.9


def jaccard(a: Sequence[str], b: Sequence[str]) -> float:
    """|A ∩ B| / |A ∪ B| of the two lists as sets (1.0 for two empty lists): order-blind."""
    union = set(a) | set(b)
    return len(set(a) & set(b)) / len(union) if union else 1.0


def rbo(a: Sequence[str], b: Sequence[str], p: float = RBO_P) -> float:
    """Rank-biased overlap to the depth of the longer list, normalised so that two identical
    lists score 1: ``Σ_d p^(d-1) · |A[:d] ∩ B[:d]| / d  /  Σ_d p^(d-1)`` for d = 1 … depth.
    Unlike Jaccard it weighs agreement at the top most (1.0 for two empty lists)."""
    depth = max(len(a), len(b))
    if depth == 0:
        return 1.0
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    common = 0
    total = weights = 0.0
    for d in range(depth):
        x = a[d] if d < len(a) else None
        y = b[d] if d < len(b) else None
        if x is not None:
            common += x in seen_b
            seen_a.add(x)
        if y is not None:
            common += y in seen_a  # x == y counts here, once
            seen_b.add(y)
        w = p**d
        total += w * common / (d + 1)
        weights += w
    return total / weights
