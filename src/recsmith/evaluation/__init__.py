"""Offline evaluation: leak-free splits of the event log and vectorised top-k metrics."""

from recsmith.evaluation.metrics import (
    DEFAULT_METRICS,
    METRICS,
    MetricResult,
    average_precision_at_k,
    catalog_coverage,
    compute_metrics,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)
from recsmith.evaluation.split import (
    Split,
    SplitSpec,
    actor_keys,
    leave_last_out,
    parse_split,
    temporal_split,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "MetricResult",
    "Split",
    "SplitSpec",
    "actor_keys",
    "average_precision_at_k",
    "catalog_coverage",
    "compute_metrics",
    "hit_matrix",
    "hit_rate_at_k",
    "leave_last_out",
    "ndcg_at_k",
    "parse_split",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "temporal_split",
]
