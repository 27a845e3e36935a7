"""Implicit ALS (``models.als.ImplicitALS``) by Spark MLlib's ALS with ``implicitPrefs``.

Both solve Hu, Koren & Volinsky's objective with confidence 1 + alpha·w and preference w > 0, but
not identically: MLlib solves each least-squares exactly (Cholesky) where ``implicit`` takes a few
conjugate-gradient steps, MLlib multiplies ``regParam`` by the number of ratings of the user (or
item) being solved (ALS-WR) where ``implicit`` uses the regularisation as given, and they draw
different initial factors. The same settings thus give close, not equal, factors:
``benchmarks/spark_train.py`` measures the NDCG@10 gap.
"""

from __future__ import annotations

import numpy as np

from recsmith.models.als import ImplicitALS
from recsmith.spark.collect import collect_columns
from recsmith.spark.interactions import SparkInteractions


def fit_als(data: SparkInteractions, model: ImplicitALS) -> ImplicitALS:
    """One MLlib fit: the release records ``starts = 1`` (MLlib's single start), not the
    averaged starts the in-memory path fits."""
    config = model.config.model_copy(update={"starts": 1})
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=config.factors,
        maxIter=config.iterations,
        regParam=config.regularization,
        alpha=config.alpha,
        implicitPrefs=True,
        userCol="u",
        itemCol="i",
        ratingCol="w",
    )
    if config.random_state is not None:
        als = als.setSeed(config.random_state)
    fitted = als.fit(data.pairs)
    users = _factors(collect_columns(fitted.userFactors), len(data.users), config.factors)
    items = _factors(collect_columns(fitted.itemFactors), data.n_items, config.factors)
    return ImplicitALS.from_arrays(config, {"user_factors_": users, "item_factors_": items})


def _factors(columns: dict[str, np.ndarray], n: int, rank: int) -> np.ndarray:
    """Factors by index; rows MLlib never saw (no positive pair) stay zero: they score nothing."""
    out = np.zeros((n, rank), np.float32)
    if len(columns["id"]):
        out[columns["id"].astype(np.int64)] = columns["features"]
    return out
