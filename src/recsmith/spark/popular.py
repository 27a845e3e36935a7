"""Popularity (``models.popularity``) on Spark SQL: distinct users per item, or decayed event
counts with a half-life; also the fallback every artifact carries."""

from __future__ import annotations

from pyspark.sql import functions as F

from recsmith.models.popularity import Popular
from recsmith.spark.collect import collect_columns
from recsmith.spark.interactions import SparkInteractions, decay, to_array


def fit_popular(data: SparkInteractions, model: Popular) -> Popular:
    """``model`` (unfitted) is a ``Popular`` or a ``Trending``: the same counts, another default
    half-life."""
    config = model.config
    if config.half_life_days is None:  # users with a positive pair, as bincount(matrix.indices)
        counts = data.pairs.groupBy("i").agg(F.count(F.lit(1)).cast("double").alias("n"))
    else:
        weight = decay(F.col("ts"), data.reference_ts, config.half_life_days)
        counts = data.events.groupBy("i").agg(F.sum(weight).alias("n"))
    scores = to_array(collect_columns(counts), "i", "n", data.n_items)
    return type(model).from_arrays(config, {"item_scores_": scores})
